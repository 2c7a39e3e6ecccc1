package handler

// DescribeClientQuotas v0-1, AlterClientQuotas v0-1.
//
// Moldau does not enforce client quotas, so none are configured: DescribeClientQuotas validates
// its filter as Kafka does (INVALID_REQUEST for an unknown entity type, a repeated one, an ip
// filter with a user or client-id filter, or a match string that contradicts the match type) and
// answers no entries. AlterClientQuotas validates each entry as Kafka's controller does (entity
// types and combinations, quota keys for the entity, values > 0, whole numbers for byte rates)
// and answers a valid entry with INVALID_REQUEST saying that Moldau does not enforce quotas:
// storing a quota that is never applied would mislead.

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeClientQuotas, 0, 1, (*Handler).handleDescribeClientQuotas)
	register(kmsg.AlterClientQuotas, 0, 1, (*Handler).handleAlterClientQuotas)
}

const (
	quotaUser     = "user"
	quotaClientID = "client-id"
	quotaIP       = "ip"
)

// quotaKeys are Kafka's quota keys by entity kind; the value says whether it must be a whole
// number.
var (
	userClientQuotaKeys = map[string]bool{"producer_byte_rate": true, "consumer_byte_rate": true, "request_percentage": false, "controller_mutation_rate": false}
	ipQuotaKeys         = map[string]bool{"connection_creation_rate": true}
)

func (h *Handler) handleDescribeClientQuotas(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if err := checkQuotaFilter(r.Components); err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = errorMessage(err)
		return resp, nil
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	return resp, nil
}

func checkQuotaFilter(components []kmsg.DescribeClientQuotasRequestComponent) error {
	seen := map[string]bool{}
	for _, c := range components {
		switch c.EntityType {
		case quotaUser, quotaClientID, quotaIP:
		default:
			return fmt.Errorf("custom entity type '%s' not supported: %w", c.EntityType, kerr.InvalidRequest)
		}
		if seen[c.EntityType] {
			return fmt.Errorf("duplicate entity type in filter: %s: %w", c.EntityType, kerr.InvalidRequest)
		}
		seen[c.EntityType] = true
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return fmt.Errorf("request specified MATCH_TYPE_EXACT, but set match string to null: %w", kerr.InvalidRequest)
			}
		case kmsg.QuotasMatchTypeDefault, kmsg.QuotasMatchTypeAny:
			if c.Match != nil {
				return fmt.Errorf("request specified match type %d, but also specified a match string: %w", c.MatchType, kerr.InvalidRequest)
			}
		default:
			return fmt.Errorf("unexpected match type %d: %w", c.MatchType, kerr.InvalidRequest)
		}
	}
	if seen[quotaIP] && (seen[quotaUser] || seen[quotaClientID]) {
		return fmt.Errorf("invalid entity filter component combination, IP filter component should not be used with user or clientId filter component: %w", kerr.InvalidRequest)
	}
	return nil
}

func (h *Handler) handleAlterClientQuotas(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range r.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, en := range e.Entity {
			ren := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ren.Type, ren.Name = en.Type, en.Name
			re.Entity = append(re.Entity, ren)
		}
		err := checkQuotaEntry(e)
		if err == nil {
			err = fmt.Errorf("Moldau does not enforce client quotas; none can be set: %w", kerr.InvalidRequest)
		}
		re.ErrorCode = errorCode(err)
		re.ErrorMessage = errorMessage(err)
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}

func checkQuotaEntry(e kmsg.AlterClientQuotasRequestEntry) error {
	if len(e.Entity) == 0 {
		return fmt.Errorf("invalid empty client quota entity: %w", kerr.InvalidRequest)
	}
	seen := map[string]bool{}
	for _, en := range e.Entity {
		switch en.Type {
		case quotaUser, quotaClientID:
		case quotaIP:
			if en.Name != nil && net.ParseIP(*en.Name) == nil {
				return fmt.Errorf("%s is not a valid IP: %w", *en.Name, kerr.InvalidRequest)
			}
		default:
			return fmt.Errorf("unhandled client quota entity type: %s: %w", en.Type, kerr.InvalidRequest)
		}
		if seen[en.Type] {
			return fmt.Errorf("duplicate %s entity: %w", en.Type, kerr.InvalidRequest)
		}
		seen[en.Type] = true
	}
	keys := userClientQuotaKeys
	if seen[quotaIP] {
		if len(seen) > 1 {
			return fmt.Errorf("invalid quota entity combination, IP entity should not be used with user/client ID entity: %w", kerr.InvalidRequest)
		}
		keys = ipQuotaKeys
	}
	for _, op := range e.Ops {
		whole, ok := keys[op.Key]
		switch {
		case !ok:
			return fmt.Errorf("invalid configuration key %s: %w", op.Key, kerr.InvalidRequest)
		case op.Remove:
		case op.Value <= 0:
			return fmt.Errorf("quota %s must be greater than 0: %w", op.Key, kerr.InvalidRequest)
		case whole && float64(int64(op.Value)) != op.Value:
			return fmt.Errorf("configuration %s must be a Long value: %w", op.Key, kerr.InvalidRequest)
		}
	}
	return nil
}
