package handler

// CreateDelegationToken v1-3, RenewDelegationToken v1-2, ExpireDelegationToken v1-2,
// DescribeDelegationToken v1-3 (Kafka 4's ranges).
//
// Kafka allows delegation token requests only on SASL channels; Moldau's listeners are all
// PLAINTEXT, so each is answered, as Kafka answers it on a PLAINTEXT listener, with
// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.CreateDelegationToken, 1, 3, (*Handler).handleCreateDelegationToken)
	register(kmsg.RenewDelegationToken, 1, 2, (*Handler).handleRenewDelegationToken)
	register(kmsg.ExpireDelegationToken, 1, 2, (*Handler).handleExpireDelegationToken)
	register(kmsg.DescribeDelegationToken, 1, 3, (*Handler).handleDescribeDelegationToken)
}

func (h *Handler) handleCreateDelegationToken(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.CreateDelegationTokenRequest).ResponseKind().(*kmsg.CreateDelegationTokenResponse)
	resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
	resp.PrincipalType, resp.PrincipalName = "User", "ANONYMOUS"
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = "User", "ANONYMOUS"
	resp.HMAC = []byte{}
	return resp, nil
}

func (h *Handler) handleRenewDelegationToken(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.RenewDelegationTokenRequest).ResponseKind().(*kmsg.RenewDelegationTokenResponse)
	resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
	return resp, nil
}

func (h *Handler) handleExpireDelegationToken(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.ExpireDelegationTokenRequest).ResponseKind().(*kmsg.ExpireDelegationTokenResponse)
	resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
	return resp, nil
}

func (h *Handler) handleDescribeDelegationToken(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.DescribeDelegationTokenRequest).ResponseKind().(*kmsg.DescribeDelegationTokenResponse)
	resp.ErrorCode = kerr.DelegationTokenRequestNotAllowed.Code
	resp.TokenDetails = []kmsg.DescribeDelegationTokenResponseTokenDetail{}
	return resp, nil
}
