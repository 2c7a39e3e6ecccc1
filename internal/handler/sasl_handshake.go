package handler

// SaslHandshake: v0-1.
//
// No SASL mechanism is enabled on Moldau's listeners yet: every handshake is answered with
// UNSUPPORTED_SASL_MECHANISM and an empty mechanism list, so a client configured for SASL gets a
// clear error instead of a hang.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.SASLHandshake, 0, 1, (*Handler).handleSaslHandshake) }

func (h *Handler) handleSaslHandshake(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
	resp.SupportedMechanisms = []string{}
	return resp, nil
}
