package handler

// AllocateProducerIds: v0-0. Broker -> controller: a block of producer ids, handed out from the
// metadata log (a block is never handed out twice). Sent by a broker that is not the raft leader
// to the leader's CONTROLLER listener.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { registerController(kmsg.AllocateProducerIDs, 0, 0, (*Handler).handleAllocateProducerIDs) }

func (h *Handler) handleAllocateProducerIDs(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AllocateProducerIDsRequest)
	resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	first, count, err := h.meta.AllocateProducerIDs(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = first, int32(count)
	return resp, nil
}
