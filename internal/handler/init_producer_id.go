package handler

// InitProducerId: v0-5.
//
// Idempotent producers (no transactional id) get a fresh producer id at epoch 0 on every call,
// taken from a block of ids the controller allocates through the metadata log, so ids are never
// reused across restarts. The ProducerId and ProducerEpoch of the request (v3+, KIP-360) are
// ignored without a transactional id, as Kafka's TransactionCoordinator.handleInitProducerId
// ignores them: bumping the epoch of whatever id a client names would let any client fence any
// other producer. A transactional id goes to the transaction coordinator (package txn), which
// answers NOT_COORDINATOR when another broker coordinates it; PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH for v0-3, which predate it, as Kafka's KafkaApis maps it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.InitProducerID, 0, 5, (*Handler).handleInitProducerID) }

func (h *Handler) handleInitProducerID(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		if h.opts.Txns == nil {
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			return resp, nil
		}
		resp = h.opts.Txns.InitProducerID(ctx, r)
		if r.Version < 4 && resp.ErrorCode == kerr.ProducerFenced.Code {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code
		}
		return resp, nil
	}
	id, err := h.pids.NextProducerID(ctx)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		h.log.Warn("allocate producer id", "err", err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
