package handler

// BrokerRegistration: v0-4. Broker -> controller, on the CONTROLLER listener: a broker registers
// its id and endpoints in the metadata log.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { registerController(kmsg.BrokerRegistration, 0, 4, (*Handler).handleBrokerRegistration) }

func (h *Handler) handleBrokerRegistration(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.BrokerRegistrationRequest)
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	b := metadata.Broker{NodeID: r.BrokerID}
	if len(r.Listeners) > 0 {
		b.Host, b.Port = r.Listeners[0].Host, int32(r.Listeners[0].Port)
	}
	if r.Rack != nil {
		b.Rack = *r.Rack
	}
	if err := h.meta.RegisterBroker(ctx, b); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.BrokerEpoch = int64(h.meta.Image().Index())
	return resp, nil
}
