package handler

// DescribeUserScramCredentials v0, AlterUserScramCredentials v0.
//
// Moldau has no SASL/SCRAM authentication (see SaslHandshake), so it holds no credentials:
// describing all users answers none; describing a named user is RESOURCE_NOT_FOUND, a user named
// twice DUPLICATE_RESOURCE (Kafka's messages). AlterUserScramCredentials validates as Kafka does
// (UNACCEPTABLE_CREDENTIAL for an empty name or an iteration count outside 4096-16384,
// UNSUPPORTED_SASL_MECHANISM for a mechanism other than SCRAM-SHA-256/512, DUPLICATE_RESOURCE for
// a credential altered twice, RESOURCE_NOT_FOUND for deleting one that does not exist) and
// answers a valid upsertion with UNSUPPORTED_SASL_MECHANISM: Moldau cannot authenticate with it.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeUserSCRAMCredentials, 0, 0, (*Handler).handleDescribeUserScramCredentials)
	register(kmsg.AlterUserSCRAMCredentials, 0, 0, (*Handler).handleAlterUserScramCredentials)
}

func (h *Handler) handleDescribeUserScramCredentials(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	resp.Results = []kmsg.DescribeUserSCRAMCredentialsResponseResult{}
	count := map[string]int{}
	for _, u := range r.Users {
		count[u.Name]++
	}
	done := map[string]bool{}
	for _, u := range r.Users {
		if done[u.Name] {
			continue
		}
		done[u.Name] = true
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = u.Name
		err := fmt.Errorf("attempt to describe a user credential that does not exist: %s: %w", u.Name, kerr.ResourceNotFound)
		if count[u.Name] > 1 {
			err = fmt.Errorf("cannot describe SCRAM credentials for the same user twice in a single request: %s: %w", u.Name, kerr.DuplicateResource)
		}
		res.ErrorCode = errorCode(err)
		res.ErrorMessage = errorMessage(err)
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// scramMechanisms are Kafka's ScramMechanism codes.
var scramMechanisms = map[int8]string{1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}

func (h *Handler) handleAlterUserScramCredentials(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	type cred struct {
		user      string
		mechanism int8
	}
	times := map[cred]int{}
	var users []string
	errs := map[string]error{}
	note := func(user string, err error) { // the first error of a user is its answer
		if _, ok := errs[user]; !ok {
			users = append(users, user)
			errs[user] = err
		}
	}
	for _, d := range r.Deletions {
		times[cred{d.Name, d.Mechanism}]++
	}
	for _, u := range r.Upsertions {
		times[cred{u.Name, u.Mechanism}]++
	}
	check := func(user string, mechanism int8) error {
		switch {
		case user == "":
			return fmt.Errorf("username must not be empty: %w", kerr.UnacceptableCredential)
		case scramMechanisms[mechanism] == "":
			return fmt.Errorf("unknown SCRAM mechanism %d: %w", mechanism, kerr.UnsupportedSaslMechanism)
		case times[cred{user, mechanism}] > 1:
			return fmt.Errorf("a user credential cannot be altered twice in the same request: %w", kerr.DuplicateResource)
		}
		return nil
	}
	for _, d := range r.Deletions {
		err := check(d.Name, d.Mechanism)
		if err == nil {
			err = fmt.Errorf("attempt to delete a user credential that does not exist: %w", kerr.ResourceNotFound)
		}
		note(d.Name, err)
	}
	for _, u := range r.Upsertions {
		err := check(u.Name, u.Mechanism)
		switch {
		case err != nil:
		case u.Iterations < 4096:
			err = fmt.Errorf("too few iterations: %w", kerr.UnacceptableCredential)
		case u.Iterations > 16384:
			err = fmt.Errorf("too many iterations: %w", kerr.UnacceptableCredential)
		default:
			err = fmt.Errorf("Moldau has no SASL/SCRAM authentication: %s credentials cannot be stored: %w", scramMechanisms[u.Mechanism], kerr.UnsupportedSaslMechanism)
		}
		note(u.Name, err)
	}
	for _, user := range users {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		res.ErrorCode = errorCode(errs[user])
		res.ErrorMessage = errorMessage(errs[user])
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
