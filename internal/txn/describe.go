package txn

import (
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions answers DescribeTransactions v0 for the ids this coordinator serves
// (NOT_COORDINATOR for the others, TRANSACTIONAL_ID_NOT_FOUND for an unknown one).
func (c *Coordinator) DescribeTransactions(r *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		e, code := c.lockEntry(id, false)
		switch {
		case code != 0:
			st.ErrorCode = code
		case e == nil:
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			if m := e.m; m == nil {
				st.ErrorCode = kerr.TransactionalIDNotFound.Code
			} else {
				st.State = m.State.String()
				st.TimeoutMillis = m.TimeoutMs
				st.StartTimestamp = m.StartMs
				st.ProducerID, st.ProducerEpoch = m.ProducerID, m.ProducerEpoch
				for _, tp := range m.Partitions {
					if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
						st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
						continue
					}
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
					st.Topics = append(st.Topics, t)
				}
			}
			e.mu.Unlock()
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// ListTransactions answers ListTransactions v0-2 with the transactions of every partition this
// coordinator serves, filtered by state, producer id, duration (v1: running at least that many
// ms) and id pattern (v2). Partitions still loading make it COORDINATOR_LOAD_IN_PROGRESS, as Kafka.
func (c *Coordinator) ListTransactions(r *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	resp.UnknownStateFilters = []string{}
	resp.TransactionStates = []kmsg.ListTransactionsResponseTransactionState{}
	var pattern *regexp.Regexp
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*r.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	states := map[State]bool{}
	for _, s := range r.StateFilters {
		st, ok := ParseState(s)
		if !ok || st.String() != s {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
			continue
		}
		states[st] = true
	}
	if len(r.StateFilters) > 0 && len(states) == 0 {
		return resp // only unknown states: nothing matches
	}
	c.mu.Lock()
	for _, o := range c.mu.owned {
		select {
		case <-o.loaded:
		default:
			resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		}
	}
	c.mu.Unlock()
	if resp.ErrorCode != 0 {
		return resp
	}
	now := c.nowMs()
	for _, e := range c.entries() {
		e.mu.Lock()
		m := e.m
		if m == nil || m.State == Dead || !c.current(e) {
			e.mu.Unlock()
			continue
		}
		match := (len(states) == 0 || states[m.State]) &&
			(len(r.ProducerIDFilters) == 0 || slices.Contains(r.ProducerIDFilters, m.ProducerID)) &&
			(r.Version < 1 || r.DurationFilterMillis < 0 || now-m.StartMs >= r.DurationFilterMillis) &&
			(pattern == nil || pattern.MatchString(e.id))
		if match {
			st := kmsg.NewListTransactionsResponseTransactionState()
			st.TransactionalID, st.ProducerID, st.TransactionState = e.id, m.ProducerID, m.State.String()
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		e.mu.Unlock()
	}
	slices.SortFunc(resp.TransactionStates, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(a.TransactionalID, b.TransactionalID)
	})
	return resp
}
