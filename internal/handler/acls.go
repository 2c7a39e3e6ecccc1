package handler

// DescribeAcls v1-3, CreateAcls v1-3, DeleteAcls v1-3 (Kafka 4 serves the same ranges).
//
// Moldau has no authorizer: as a Kafka broker without authorizer.class.name, every ACL request is
// answered with SECURITY_DISABLED and Kafka's message, so kafka-acls and admin clients report
// that instead of a dropped connection.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeACLs, 1, 3, (*Handler).handleDescribeAcls)
	register(kmsg.CreateACLs, 1, 3, (*Handler).handleCreateAcls)
	register(kmsg.DeleteACLs, 1, 3, (*Handler).handleDeleteAcls)
}

// noAuthorizer is Kafka's message for SECURITY_DISABLED.
const noAuthorizer = "No Authorizer is configured."

func (h *Handler) handleDescribeAcls(_ context.Context, req *server.Request) (kmsg.Response, error) {
	resp := req.Msg.(*kmsg.DescribeACLsRequest).ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode = kerr.SecurityDisabled.Code
	resp.ErrorMessage = kmsg.StringPtr(noAuthorizer)
	return resp, nil
}

func (h *Handler) handleCreateAcls(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	for range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode = kerr.SecurityDisabled.Code
		res.ErrorMessage = kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

func (h *Handler) handleDeleteAcls(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode = kerr.SecurityDisabled.Code
		res.ErrorMessage = kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
