package handler

import (
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/server"
)

// encodeFetch encodes a Fetch response (v4-17) as server chunks, with each partition's record
// data taken from the segment file sections in secs[topic][partition] (sent with sendfile)
// instead of RecordBatches (or, for a log on a filesystem without OS files, their bytes). The bytes are exactly what kmsg's FetchResponse.AppendTo produces for
// the same response with the records inlined (TestEncodeFetchMatchesKmsg).
//
// It writes no tagged fields: Moldau never sets DivergingEpoch, CurrentLeader, SnapshotID or
// NodeEndpoints.
func encodeFetch(resp *kmsg.FetchResponse, secs [][][]log.Section) []server.Chunk {
	v := resp.Version
	flex := v >= 12
	var chunks []server.Chunk
	dst := make([]byte, 0, 256)
	if v >= 1 {
		dst = kbin.AppendInt32(dst, resp.ThrottleMillis)
	}
	if v >= 7 {
		dst = kbin.AppendInt16(dst, resp.ErrorCode)
		dst = kbin.AppendInt32(dst, resp.SessionID)
	}
	dst = appendArrayLen(dst, len(resp.Topics), flex)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if v <= 12 {
			if flex {
				dst = kbin.AppendCompactString(dst, t.Topic)
			} else {
				dst = kbin.AppendString(dst, t.Topic)
			}
		} else {
			dst = kbin.AppendUuid(dst, t.TopicID)
		}
		dst = appendArrayLen(dst, len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			dst = kbin.AppendInt32(dst, p.Partition)
			dst = kbin.AppendInt16(dst, p.ErrorCode)
			dst = kbin.AppendInt64(dst, p.HighWatermark)
			dst = kbin.AppendInt64(dst, p.LastStableOffset)
			if v >= 5 {
				dst = kbin.AppendInt64(dst, p.LogStartOffset)
			}
			if flex {
				dst = kbin.AppendCompactNullableArrayLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			} else {
				dst = kbin.AppendNullableArrayLen(dst, len(p.AbortedTransactions), p.AbortedTransactions == nil)
			}
			for _, at := range p.AbortedTransactions {
				dst = kbin.AppendInt64(dst, at.ProducerID)
				dst = kbin.AppendInt64(dst, at.FirstOffset)
				if flex {
					dst = append(dst, 0)
				}
			}
			if v >= 11 {
				dst = kbin.AppendInt32(dst, p.PreferredReadReplica)
			}
			var ps []log.Section
			if ti < len(secs) && pi < len(secs[ti]) {
				ps = secs[ti][pi]
			}
			if len(ps) == 0 {
				if flex {
					dst = kbin.AppendCompactNullableBytes(dst, p.RecordBatches)
				} else {
					dst = kbin.AppendNullableBytes(dst, p.RecordBatches)
				}
			} else {
				var total int64
				for _, s := range ps {
					total += s.Len
				}
				if flex {
					dst = kbin.AppendUvarint(dst, uint32(total+1))
				} else {
					dst = kbin.AppendInt32(dst, int32(total))
				}
				chunks = append(chunks, server.Chunk{Bytes: dst})
				for _, s := range ps {
					if s.File == nil { // a filesystem without OS files (tests): the bytes were read
						chunks = append(chunks, server.Chunk{Bytes: s.Data})
						continue
					}
					chunks = append(chunks, server.Chunk{File: s.File, Pos: s.Pos, Len: s.Len})
				}
				dst = make([]byte, 0, 256)
			}
			if flex {
				dst = append(dst, 0) // no tagged fields
			}
		}
		if flex {
			dst = append(dst, 0)
		}
	}
	if flex {
		dst = append(dst, 0)
	}
	return append(chunks, server.Chunk{Bytes: dst})
}

func appendArrayLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(dst, n)
	}
	return kbin.AppendArrayLen(dst, n)
}
