package handler

// ListOffsets: v1-10.
//
// Timestamp -1: the latest offset (high watermark, or last stable offset for read_committed);
// -2: the log start offset; -3 (v7+): the offset of the record with the largest timestamp;
// -4 (v8+): the earliest local offset (= log start, there is no tiered storage); -5 (v9+): the
// latest tiered offset (-1: nothing is tiered). A timestamp >= 0 gives the first offset whose
// timestamp is at least that, or offset -1 when there is none (below the high watermark, or the
// last stable offset for read_committed). v4+ CurrentLeaderEpoch is checked.
//
// Only the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere). A new leader whose high watermark
// is still below the start of its epoch answers OFFSET_NOT_AVAILABLE to -1 and to a timestamp it
// finds no offset for below the high watermark, as Kafka does (KIP-207): the client retries.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/partition"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.ListOffsets, 1, 10, (*Handler).handleListOffsets) }

func (h *Handler) handleListOffsets(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	im := h.meta.Image()
	for _, rt := range r.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, ok := im.Topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset = -1, -1
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, err := h.leaderPartition(t, rp.Partition)
			if err == nil {
				err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err == nil {
				sp.LeaderEpoch = p.LeaderEpoch()
				err = listOffset(p, rp.Timestamp, r.IsolationLevel == 1, &sp)
			}
			sp.ErrorCode = errorCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func listOffset(p *partition.Partition, ts int64, readCommitted bool, sp *kmsg.ListOffsetsResponseTopicPartition) error {
	switch ts {
	case -1:
		if err := p.CheckOffsetsAvailable(); err != nil {
			return err
		}
		sp.Offset = p.HighWatermark()
		if readCommitted {
			sp.Offset = p.LastStableOffset()
		}
	case -2, -4:
		sp.Offset = p.LogStartOffset()
	case -3:
		off, t, err := p.MaxTimestamp()
		if err != nil {
			return err
		}
		sp.Offset, sp.Timestamp = off, t
	case -5:
		sp.Offset = -1
	default:
		if ts < 0 {
			return kerr.InvalidRequest
		}
		off, t, err := p.OffsetForTimestamp(ts)
		if err != nil {
			return err
		}
		if readCommitted && off >= p.LastStableOffset() {
			// ReplicaManager.fetchOffsetForTimestamp: only offsets below the last fetchable one.
			off, t = -1, -1
		}
		if off < 0 {
			if err := p.CheckOffsetsAvailable(); err != nil {
				return err
			}
		}
		sp.Offset, sp.Timestamp = off, t
	}
	return nil
}
