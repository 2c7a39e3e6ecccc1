package broker

// The broker side of the consumer lag tracker (metrics.LagTracker).

import "github.com/moldau/moldau/internal/metrics"

// Lag is the consumer lag tracker of the groups this broker coordinates (nil before Start).
func (b *Broker) Lag() *metrics.LagTracker { return b.lag }
