package metadata

import (
	"context"

	"github.com/hashicorp/raft"
)

// directCommitter applies batches straight to the FSM, without raft (tests, tools).
type directCommitter struct {
	fsm    *FSM
	nodeID int32
	index  uint64
}

func (d *directCommitter) commit(_ context.Context, data []byte) (any, error) {
	d.index++
	return d.fsm.Apply(&raft.Log{Index: d.index, Type: raft.LogCommand, Data: data}), nil
}

func (d *directCommitter) leader() (int32, bool) { return d.nodeID, true }
func (d *directCommitter) close() error          { return nil }
