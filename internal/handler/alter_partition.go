package handler

// AlterPartition: v2-3. Partition leader -> controller, on the CONTROLLER listener only: the ISR
// changes a leader wants (with its followers' broker epochs, KIP-903), compare-and-set on the
// partition epoch; each partition is answered with its state after the change or Kafka's error
// (metadata/partitions.go). v0-1 name topics instead of ids and are not served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { registerController(kmsg.AlterPartition, 2, 3, (*Handler).handleAlterPartition) }

func (h *Handler) handleAlterPartition(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterPartitionRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionResponse)
	var items []metadata.AlterPartitionItem
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			it := metadata.AlterPartitionItem{TopicID: rt.TopicID, Partition: rp.Partition, LeaderEpoch: rp.LeaderEpoch,
				PartitionEpoch: rp.PartitionEpoch, LeaderRecoveryState: rp.LeaderRecoveryState}
			if r.Version >= 3 {
				for _, m := range rp.NewEpochISR {
					it.NewISR = append(it.NewISR, metadata.ISRMember{BrokerID: m.BrokerID, BrokerEpoch: m.BrokerEpoch})
				}
			} else {
				for _, id := range rp.NewISR {
					it.NewISR = append(it.NewISR, metadata.ISRMember{BrokerID: id, BrokerEpoch: -1})
				}
			}
			items = append(items, it)
		}
	}
	results, err := h.meta.AlterPartition(ctx, r.BrokerID, r.BrokerEpoch, items)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	i := 0
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.TopidID = rt.TopicID
		for range rt.Partitions {
			res, it := results[i], items[i]
			i++
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = it.Partition
			if res.Err != nil {
				sp.ErrorCode = errorCode(res.Err)
			} else {
				p := res.Partition
				sp.LeaderID, sp.LeaderEpoch, sp.ISR = p.Leader, p.LeaderEpoch, p.ISR
				sp.LeaderRecoveryState, sp.PartitionEpoch = p.LeaderRecoveryState, p.PartitionEpoch
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
