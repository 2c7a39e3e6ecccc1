package handler

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/server"
)

// The chunked Fetch encoding must be byte-for-byte what kmsg encodes with the records inlined.
func TestEncodeFetchMatchesKmsg(t *testing.T) {
	data := make([]byte, 1<<16)
	rng := rand.New(rand.NewSource(1))
	rng.Read(data)
	f, err := os.Create(filepath.Join(t.TempDir(), "seg.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}

	for v := int16(4); v <= 17; v++ {
		for iter := 0; iter < 20; iter++ {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = v
			resp.ThrottleMillis = rng.Int31()
			resp.ErrorCode = int16(rng.Intn(3))
			resp.SessionID = rng.Int31n(2)
			var secs [][][]log.Section
			for ti := 0; ti < rng.Intn(3); ti++ {
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic = "topic-" + string(rune('a'+ti))
				rng.Read(rt.TopicID[:])
				var tsecs [][]log.Section
				for pi := 0; pi < rng.Intn(4); pi++ {
					rp := kmsg.NewFetchResponseTopicPartition()
					rp.Partition = int32(pi)
					rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = rng.Int63(), rng.Int63(), rng.Int63()
					if rng.Intn(3) == 0 {
						rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset = rng.Int31(), rng.Int63()
					}
					if rng.Intn(3) == 0 {
						rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = rng.Int31(), rng.Int31()
					}
					if rng.Intn(2) == 0 {
						rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 9}}
					}
					var ps []log.Section
					switch rng.Intn(3) {
					case 0:
						rp.RecordBatches = []byte{}
					case 1:
						for k := 0; k < 1+rng.Intn(3); k++ {
							pos := rng.Int63n(int64(len(data)) - 2000)
							ps = append(ps, log.Section{File: f, Pos: pos, Len: rng.Int63n(2000)})
						}
					}
					rt.Partitions = append(rt.Partitions, rp)
					tsecs = append(tsecs, ps)
				}
				resp.Topics = append(resp.Topics, rt)
				secs = append(secs, tsecs)
			}
			for bi := 0; bi < rng.Intn(3); bi++ {
				b := kmsg.NewFetchResponseBroker()
				b.NodeID, b.Host, b.Port = rng.Int31(), "host-"+string(rune('a'+bi)), rng.Int31()
				if bi == 1 {
					b.Rack = kmsg.StringPtr("rack-1")
				}
				resp.Brokers = append(resp.Brokers, b)
			}

			got := materialize(t, encodeFetch(resp, secs))
			// The reference: the same response with the sections inlined.
			for ti := range resp.Topics {
				for pi := range resp.Topics[ti].Partitions {
					if ps := secs[ti][pi]; len(ps) > 0 {
						var b []byte
						for _, s := range ps {
							b = append(b, data[s.Pos:s.Pos+s.Len]...)
						}
						resp.Topics[ti].Partitions[pi].RecordBatches = b
					}
				}
			}
			want := resp.AppendTo(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("v%d iteration %d: chunked encoding differs from kmsg (%d vs %d bytes)", v, iter, len(got), len(want))
			}
		}
	}
}

func materialize(t *testing.T, chunks []server.Chunk) []byte {
	t.Helper()
	var out []byte
	for _, c := range chunks {
		if c.File == nil {
			out = append(out, c.Bytes...)
			continue
		}
		b, err := io.ReadAll(io.NewSectionReader(c.File, c.Pos, c.Len))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
