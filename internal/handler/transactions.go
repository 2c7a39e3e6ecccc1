package handler

// DescribeTransactions v0, ListTransactions v0-2.
//
// The transaction coordinator answers both (txn.Coordinator): DescribeTransactions for the ids it
// coordinates (NOT_COORDINATOR for the others: the admin client asks each id's coordinator),
// ListTransactions for the ids of the __transaction_state partitions this broker leads (the
// admin client asks every broker). Without a coordinator there are no transactions:
// ListTransactions answers none (and, as Kafka, lists the state filters it does not know; v2
// INVALID_REGULAR_EXPRESSION for a pattern that does not compile), and DescribeTransactions
// answers TRANSACTIONAL_ID_NOT_FOUND for every id.

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeTransactions, 0, 0, (*Handler).handleDescribeTransactions)
	register(kmsg.ListTransactions, 0, 2, (*Handler).handleListTransactions)
}

// transactionStates are Kafka's TransactionState names.
var transactionStates = map[string]bool{
	"Empty": true, "Ongoing": true, "PrepareCommit": true, "PrepareAbort": true,
	"CompleteCommit": true, "CompleteAbort": true, "Dead": true, "PrepareEpochFence": true,
}

func (h *Handler) handleDescribeTransactions(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeTransactionsRequest)
	if h.opts.Txns != nil {
		return h.opts.Txns.DescribeTransactions(r), nil
	}
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ErrorCode = kerr.TransactionalIDNotFound.Code
		st.ProducerID, st.ProducerEpoch = -1, -1
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}

func (h *Handler) handleListTransactions(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ListTransactionsRequest)
	if h.opts.Txns != nil {
		return h.opts.Txns.ListTransactions(r), nil
	}
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		if _, err := regexp.Compile(*r.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	resp.UnknownStateFilters = []string{}
	for _, s := range r.StateFilters {
		if !transactionStates[s] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	resp.TransactionStates = []kmsg.ListTransactionsResponseTransactionState{}
	return resp, nil
}
