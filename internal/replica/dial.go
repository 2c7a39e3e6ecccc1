package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dialer makes LeaderClients over franz-go: each is a kgo client whose only broker is the
// leader's inter-broker listener, sending requests to that one broker (never routed through
// kgo's metadata, which could point elsewhere).
func Dialer(nodeID int32) func(addr string) (LeaderClient, error) {
	return func(addr string) (LeaderClient, error) {
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(addr),
			kgo.ClientID(fmt.Sprintf("moldau-replica-fetcher-%d", nodeID)),
			kgo.DialTimeout(5*time.Second),
			kgo.RequestRetries(0),
		)
		if err != nil {
			return nil, fmt.Errorf("replica fetcher client for %s: %w", addr, err)
		}
		seeds := cl.SeedBrokers()
		if len(seeds) == 0 {
			cl.Close()
			return nil, fmt.Errorf("replica fetcher client for %s: no broker", addr)
		}
		return &kgoLeader{cl: cl, broker: seeds[0], addr: addr}, nil
	}
}

type kgoLeader struct {
	cl     *kgo.Client
	broker *kgo.Broker
	addr   string

	once         sync.Once
	fetchVersion int16
}

func (k *kgoLeader) Fetch(ctx context.Context, req *kmsg.FetchRequest) (*kmsg.FetchResponse, error) {
	resp, err := k.broker.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetch from %s: %w", k.addr, err)
	}
	return resp.(*kmsg.FetchResponse), nil
}

func (k *kgoLeader) OffsetForLeaderEpoch(ctx context.Context, req *kmsg.OffsetForLeaderEpochRequest) (*kmsg.OffsetForLeaderEpochResponse, error) {
	resp, err := k.broker.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("offset for leader epoch from %s: %w", k.addr, err)
	}
	return resp.(*kmsg.OffsetForLeaderEpochResponse), nil
}

// FetchVersion asks the leader's ApiVersions once for its highest Fetch version (kgo sends at
// most that one); 12 is assumed when it cannot say, which a Moldau or Kafka 2.7+ leader has.
func (k *kgoLeader) FetchVersion() int16 {
	k.once.Do(func() {
		k.fetchVersion = 12
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := k.broker.Request(ctx, kmsg.NewPtrApiVersionsRequest())
		if err != nil {
			return
		}
		av := resp.(*kmsg.ApiVersionsResponse)
		if kerr.ErrorForCode(av.ErrorCode) != nil {
			return
		}
		for _, a := range av.ApiKeys {
			if a.ApiKey == kmsg.Fetch.Int16() {
				k.fetchVersion = min(a.MaxVersion, kmsg.NewPtrFetchRequest().MaxVersion())
			}
		}
	})
	return k.fetchVersion
}

func (k *kgoLeader) Close() { k.cl.Close() }
