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
// Of the tagged fields (v12+) it writes the ones Moldau sets: a partition's DivergingEpoch and
// CurrentLeader, and the response's NodeEndpoints (Brokers, for v16+), in kmsg's order and only
// when they differ from their defaults, as kmsg does; never SnapshotID or unknown tags.
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
				dst = appendPartitionTags(dst, p)
			}
		}
		if flex {
			dst = append(dst, 0)
		}
	}
	if flex {
		if len(resp.Brokers) == 0 {
			dst = append(dst, 0)
		} else {
			var body []byte
			body = kbin.AppendCompactArrayLen(body, len(resp.Brokers))
			for _, b := range resp.Brokers {
				body = kbin.AppendInt32(body, b.NodeID)
				body = kbin.AppendCompactString(body, b.Host)
				body = kbin.AppendInt32(body, b.Port)
				body = kbin.AppendCompactNullableString(body, b.Rack)
				body = append(body, 0)
			}
			dst = kbin.AppendUvarint(dst, 1) // one tag
			dst = kbin.AppendUvarint(dst, 0) // NodeEndpoints
			dst = kbin.AppendUvarint(dst, uint32(len(body)))
			dst = append(dst, body...)
		}
	}
	return append(chunks, server.Chunk{Bytes: dst})
}

// sectionBytes is the record bytes of each partition's sections, secs[t][p] summed.
func sectionBytes(secs [][][]log.Section) [][]int64 {
	out := make([][]int64, len(secs))
	for t, parts := range secs {
		out[t] = make([]int64, len(parts))
		for p, ps := range parts {
			for _, s := range ps {
				out[t][p] += s.Len
			}
		}
	}
	return out
}

// appendPartitionTags writes a partition's tagged fields: DivergingEpoch (tag 0) and
// CurrentLeader (tag 1) when set.
func appendPartitionTags(dst []byte, p *kmsg.FetchResponseTopicPartition) []byte {
	div := p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1
	cur := p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1
	n := uint32(0)
	if div {
		n++
	}
	if cur {
		n++
	}
	dst = kbin.AppendUvarint(dst, n)
	if div {
		dst = kbin.AppendUvarint(dst, 0)
		dst = kbin.AppendUvarint(dst, 4+8+1)
		dst = kbin.AppendInt32(dst, p.DivergingEpoch.Epoch)
		dst = kbin.AppendInt64(dst, p.DivergingEpoch.EndOffset)
		dst = append(dst, 0)
	}
	if cur {
		dst = kbin.AppendUvarint(dst, 1)
		dst = kbin.AppendUvarint(dst, 4+4+1)
		dst = kbin.AppendInt32(dst, p.CurrentLeader.LeaderID)
		dst = kbin.AppendInt32(dst, p.CurrentLeader.LeaderEpoch)
		dst = append(dst, 0)
	}
	return dst
}

func appendArrayLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(dst, n)
	}
	return kbin.AppendArrayLen(dst, n)
}
