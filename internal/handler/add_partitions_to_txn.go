package handler

// AddPartitionsToTxn v0-5: v0-3 from a transactional producer (one transaction), v4+ the
// brokers' batched form (KIP-890: a partition leader verifying, or with TV2 adding, the
// partitions of many transactions at once), answered by the transaction coordinator
// (txn.Coordinator.AddPartitionsToTxn). AddOffsetsToTxn v0-4 adds a group's __consumer_offsets
// partition to the transaction. Without a coordinator every partition gets
// COORDINATOR_NOT_AVAILABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.AddPartitionsToTxn, 0, 5, (*Handler).handleAddPartitionsToTxn)
	register(kmsg.AddOffsetsToTxn, 0, 4, (*Handler).handleAddOffsetsToTxn)
}

func (h *Handler) handleAddPartitionsToTxn(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AddPartitionsToTxnRequest)
	if h.opts.Txns != nil {
		return h.opts.Txns.AddPartitionsToTxn(r), nil
	}
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if r.Version >= 4 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	for _, t := range r.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, kerr.CoordinatorNotAvailable.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func (h *Handler) handleAddOffsetsToTxn(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AddOffsetsToTxnRequest)
	if h.opts.Txns != nil {
		return h.opts.Txns.AddOffsetsToTxn(r), nil
	}
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	return resp, nil
}
