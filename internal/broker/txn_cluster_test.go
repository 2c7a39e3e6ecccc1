package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterTransactionsSurviveCoordinatorLoss: franz-go's transactional producer commits and
// aborts transactions in a 3-node cluster (transaction.version 2) while the node coordinating
// its transactional id stops in the middle; the producer finds the new coordinator and goes on.
// A read_committed consumer reads every record of every committed transaction exactly once and
// no record of an aborted one.
func TestClusterTransactionsSurviveCoordinatorLoss(t *testing.T) {
	brokers := testCluster(t, 3, "transaction.state.log.num.partitions", "1")
	waitCluster(t, brokers, "three live brokers in every image", liveBrokers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	adm := kadm.NewClient(clusterClient(t, brokers))
	if res, err := adm.CreateTopic(ctx, 3, 3, nil, "txo"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	coordID := findTxnCoordinator(t, clusterClient(t, brokers), "loop")
	coord, rest := splitNode(t, brokers, coordID)
	prod := clusterClient(t, brokers, kgo.TransactionalID("loop"), kgo.DefaultProduceTopic("txo"),
		kgo.TransactionTimeout(20*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	committed, aborted := map[string]bool{}, map[string]bool{}
	unknown := 0
	for i := range 24 {
		if i == 8 {
			stopBroker(t, coord)
		}
		commit := i%3 != 2
		var values []string
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		produceErr := error(nil)
		for j := range 3 {
			v := fmt.Sprintf("%d-%d", i, j)
			values = append(values, v)
			if err := prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				produceErr = err
				break
			}
		}
		if produceErr != nil {
			commit = false
		}
		err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		switch {
		case err == nil && commit:
			for _, v := range values {
				committed[v] = true
			}
		case err == nil:
			for _, v := range values {
				aborted[v] = true
			}
		default:
			// The outcome of an EndTxn whose answer was lost is unknown to the client: its
			// records may be read or not, but never twice.
			unknown++
			t.Logf("transaction %d (commit=%v): %v (produce: %v)", i, commit, err, produceErr)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatal("deadline")
			}
		}
	}
	if len(committed) < 30 {
		t.Fatalf("only %d committed records (%d transactions of unknown outcome)", len(committed), unknown)
	}
	cons := clusterClient(t, rest, kgo.ConsumeTopics("txo"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for missing := len(committed); missing > 0; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d committed records not read", missing)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			seen[v]++
			if seen[v] == 1 && committed[v] {
				missing--
			}
		})
	}
	for v, n := range seen {
		if aborted[v] {
			t.Errorf("read_committed read %s of an aborted transaction", v)
		}
		if n != 1 {
			t.Errorf("read_committed read %s %d times", v, n)
		}
	}
}
