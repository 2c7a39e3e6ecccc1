package handler

// AlterReplicaLogDirs: v1-2.
//
// Moves this broker's replicas between its log dirs (several log.dirs): each partition's move
// starts at once and runs in the background (the broker's AlterReplicaLogDir): a copy in the
// destination, shown by DescribeLogDirs as a future replica, then a brief detach for the final
// copy and the swap. Per-partition errors as Kafka's ReplicaManager.alterReplicaLogDirs:
// LOG_DIR_NOT_FOUND (not one of log.dirs), KAFKA_STORAGE_ERROR (a log dir offline),
// REPLICA_NOT_AVAILABLE (no replica of the partition here), and a move to another dir while one
// runs is refused (REASSIGNMENT_IN_PROGRESS). A partition already in the dir (or on its way) is
// a success.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.AlterReplicaLogDirs, 1, 2, (*Handler).handleAlterReplicaLogDirs) }

// replicaMover is the broker's side of AlterReplicaLogDirs (a Cluster that can move replicas).
type replicaMover interface {
	AlterReplicaLogDir(topic string, p int32, dir string) error
}

func (h *Handler) handleAlterReplicaLogDirs(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterReplicaLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	mover, _ := h.cluster.(replicaMover)
	byTopic := map[string]int{}
	for _, d := range r.Dirs {
		for _, t := range d.Topics {
			i, ok := byTopic[t.Topic]
			if !ok {
				i = len(resp.Topics)
				byTopic[t.Topic] = i
				rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
				rt.Topic = t.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				rp.Partition = p
				var err error
				if mover == nil {
					err = kerr.ReplicaNotAvailable
				} else {
					err = mover.AlterReplicaLogDir(t.Topic, p, d.Dir)
				}
				if errors.Is(err, partition.ErrMoveInProgress) {
					err = kerr.ReassignmentInProgress
				}
				rp.ErrorCode = errorCode(err)
				if err != nil {
					h.log.Info("AlterReplicaLogDirs refused", "topic", t.Topic, "partition", p, "dir", d.Dir, "err", err)
				}
				resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
			}
		}
	}
	return resp, nil
}
