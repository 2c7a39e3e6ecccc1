package handler

// EndTxn v0-5: commit or abort, answered by the transaction coordinator
// (txn.Coordinator.EndTxn) once PrepareCommit or PrepareAbort is on every in-sync replica of
// its __transaction_state partition; the markers follow. v5 is transaction version 2 (the epoch
// is bumped at every end and answered). Without a coordinator: COORDINATOR_NOT_AVAILABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.EndTxn, 0, 5, (*Handler).handleEndTxn) }

func (h *Handler) handleEndTxn(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.EndTxnRequest)
	if h.opts.Txns != nil {
		return h.opts.Txns.EndTxn(r), nil
	}
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	return resp, nil
}
