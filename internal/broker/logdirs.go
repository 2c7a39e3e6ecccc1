package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moldau/moldau/internal/partition"
)

// AlterReplicaLogDir starts moving this broker's replica of topic-p to its log dir dir
// (AlterReplicaLogDirs): the replica is copied there while it serves (DescribeLogDirs shows the
// copy as a future replica), then detached for the final copy and the swap
// (partition.Move.Finish, replica.Manager.Relocate). It returns once the move has started, or
// nil at once when the replica is in dir already or on its way there; errors are the request's
// (partition.Manager.StartMove). A move that fails leaves the replica where it was; a shutdown
// stops a move that is still copying.
func (b *Broker) AlterReplicaLogDir(topic string, p int32, dir string) error {
	mv, err := b.parts.StartMove(topic, p, dir)
	if err != nil || mv == nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { // ends with ctx: cancels the copy when the broker stops
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := b.moveReplica(ctx, mv, topic, p, dir); err != nil {
			b.log.Warn("moving a replica to another log dir failed; it stays where it was", "topic", topic, "partition", p, "dir", dir, "err", err)
			return
		}
		b.log.Info("replica moved to another log dir", "topic", topic, "partition", p, "dir", dir)
	}()
	return nil
}

func (b *Broker) moveReplica(ctx context.Context, mv *partition.Move, topic string, p int32, dir string) error {
	if err := mv.Copy(ctx); err != nil {
		mv.Abort()
		return fmt.Errorf("copy: %w", err)
	}
	s, err := b.PartitionSettings(topic)
	if err != nil {
		mv.Abort()
		return err
	}
	var finishErr error
	err = b.replicas.Relocate(topic, p, func() error {
		_, finishErr = mv.Finish(s)
		return finishErr
	})
	if finishErr == nil && err != nil {
		// Moved; only giving the replica its role again failed: the next image retries it.
		return fmt.Errorf("moved to %s: %w", dir, err)
	}
	return errors.Join(finishErr, err)
}
