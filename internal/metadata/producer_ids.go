package metadata

import (
	"context"
	"fmt"
	"sync"
)

// ProducerIDs hands out producer ids one at a time from the blocks the controller allocates
// (AllocateProducerIDs). The InitProducerId handler (idempotent producers) and the transaction
// coordinator each hold one.
type ProducerIDs struct {
	Controller *Controller

	mu            sync.Mutex
	nextID, endID int64 // [nextID, endID) is what is left of the current block
}

// NextProducerID returns a producer id never handed out before, allocating a new block when
// the current one is used up.
func (p *ProducerIDs) NextProducerID(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextID >= p.endID {
		first, count, err := p.Controller.AllocateProducerIDs(ctx)
		if err != nil {
			return -1, fmt.Errorf("allocate producer id block: %w", err)
		}
		p.nextID, p.endID = first, first+count
	}
	id := p.nextID
	p.nextID++
	return id, nil
}
