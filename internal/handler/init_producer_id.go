package handler

// InitProducerId: v0-5.
//
// Idempotent producers (no transactional id) get a fresh producer id at epoch 0, taken from a
// block of ids the controller allocates through the metadata log, so ids are never reused across
// restarts. v3+ (KIP-360): a producer that sends its current id and epoch gets the epoch bumped
// (a new id when the epoch would overflow). Transactional ids arrive with the transaction
// coordinator; until then they are refused.

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.InitProducerID, 0, 5, (*Handler).handleInitProducerID) }

func (h *Handler) handleInitProducerID(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		return resp, nil
	}
	id, err := h.pids.next(ctx)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		h.log.Warn("allocate producer id", "err", err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}

// producerIDs hands out producer ids from blocks allocated by the controller.
type producerIDs struct {
	meta *metadata.Controller

	mu            sync.Mutex
	nextID, endID int64 // [nextID, endID) is what is left of the current block
}

func (p *producerIDs) next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextID >= p.endID {
		first, count, err := p.meta.AllocateProducerIDs(ctx)
		if err != nil {
			return -1, fmt.Errorf("allocate producer id block: %w", err)
		}
		p.nextID, p.endID = first, first+count
	}
	id := p.nextID
	p.nextID++
	return id, nil
}
