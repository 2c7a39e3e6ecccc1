package handler

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func markerReq(v int16, markers ...kmsg.WriteTxnMarkersRequestMarker) *kmsg.WriteTxnMarkersRequest {
	r := kmsg.NewPtrWriteTxnMarkersRequest()
	r.Version = v
	r.Markers = markers
	return r
}

func txnMarker(pid int64, epoch int16, commit bool, coordEpoch int32, tv int8, parts ...int32) kmsg.WriteTxnMarkersRequestMarker {
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, m.TransactionVersion = pid, epoch, commit, coordEpoch, tv
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = "t", parts
	m.Topics = append(m.Topics, mt)
	return m
}

// markerCodes answers, per response marker, the error code of each partition.
func markerCodes(resp kmsg.Response) []map[int32]int16 {
	var out []map[int32]int16
	for _, m := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		c := map[int32]int16{}
		for _, mt := range m.Topics {
			for _, mp := range mt.Partitions {
				c[mp.Partition] = mp.ErrorCode
			}
		}
		out = append(out, c)
	}
	return out
}

// TestWriteTxnMarkersErrors: Kafka's per-partition answers: a partition with no replica here,
// one this broker does not lead, a stale epoch under TV2 (the coordinator bumps it: the same
// epoch while the transaction is open is stale), a fenced coordinator epoch; markers of one
// producer are answered together.
func TestWriteTxnMarkersErrors(t *testing.T) {
	h, f := txnProduceFixture(t, Options{TxnVerifier: &produceVerifier{}})
	if c := codes(t, handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0, 1: 0}))); c[0] != 0 || c[1] != 0 {
		t.Fatalf("produce: %v", c)
	}
	if err := f.part(1).BecomeFollower(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	got := markerCodes(handle(t, h, markerReq(2, txnMarker(7, 0, true, 3, 2, 0, 1, 9))))
	if len(got) != 1 || got[0][0] != kerr.InvalidProducerEpoch.Code || got[0][1] != kerr.NotLeaderForPartition.Code ||
		got[0][9] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("TV2 marker of the data's epoch: %v", got)
	}
	// The bumped epoch commits; the same producer's second marker in the request (an older
	// coordinator epoch) is answered in the same response marker.
	got = markerCodes(handle(t, h, markerReq(2, txnMarker(7, 1, true, 3, 2, 0), txnMarker(7, 2, false, 2, 2, 0))))
	if len(got) != 1 || got[0][0] != kerr.TransactionCoordinatorFenced.Code {
		t.Fatalf("markers: %v", got)
	}
	if p := f.part(0); p.LastStableOffset() != p.LogEndOffset() {
		t.Fatalf("LSO %d, log end %d after the commit", p.LastStableOffset(), p.LogEndOffset())
	}
	// v1 has no TransactionVersion: TV1 rules, the data's epoch is fine.
	handle(t, h, txnProduce(11, 8, map[int32]int32{0: 0}))
	if got := markerCodes(handle(t, h, markerReq(1, txnMarker(8, 0, false, 3, 0, 0)))); got[0][0] != 0 {
		t.Fatalf("TV1 marker: %v", got)
	}
	if ab := f.part(0).AbortedTransactions(0, f.part(0).LogEndOffset()); len(ab) != 1 || ab[0].ProducerID != 8 {
		t.Fatalf("aborted %+v", ab)
	}
}

// TestReadCommittedFetchWakesOnMarker: a read_committed fetch waiting for data returns the
// transaction's records once its commit marker moves the LSO.
func TestReadCommittedFetchWakesOnMarker(t *testing.T) {
	h, f := txnProduceFixture(t, Options{TxnVerifier: &produceVerifier{}})
	handle(t, h, txnProduce(11, 7, map[int32]int32{0: 0}))
	if f.part(0).LastStableOffset() != 0 {
		t.Fatal("the open transaction does not hold the LSO")
	}
	r := fetchReq(f.topic.ID, -1, -1, 0, -1, -1)
	r.IsolationLevel, r.MinBytes, r.MaxWaitMillis = 1, 1, 10_000
	type answer struct {
		resp kmsg.Response
		err  error
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		resp, err := h.Handle(t.Context(), &server.Request{Key: r.Key(), Version: r.Version, Msg: r})
		done <- answer{resp, err}
	}()
	if got := markerCodes(handle(t, h, markerReq(1, txnMarker(7, 0, true, 0, 0, 0)))); got[0][0] != 0 {
		t.Fatalf("marker: %v", got)
	}
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	sp := decodeFetch(t, a.resp).Topics[0].Partitions[0]
	if time.Since(start) > 9*time.Second || sp.LastStableOffset != 2 || len(sp.RecordBatches) == 0 || sp.AbortedTransactions == nil {
		t.Fatalf("fetch after %v: %+v", time.Since(start), sp)
	}
}
