package handler

// DescribeConfigs v1-4, AlterConfigs v0-2, IncrementalAlterConfigs v0-1.
//
// Resources: topics (type 2) and brokers (type 4; an empty name is the cluster-wide default, a
// node id that broker's own dynamic configs, which win over the default on it). Topic overrides
// and dynamic broker configs are metadata records committed through raft, so they survive
// restarts and reach every broker of a cluster.
//
// DescribeConfigs of a broker answers for this broker only (or the default), as Kafka's does:
// Kafka's admin client sends a broker-N resource to broker N. An alteration of broker N's
// configs is accepted on every node (it is a metadata write, forwarded to the raft leader like
// the others) for any registered broker, as Kafka's controller accepts it; Kafka's broker
// itself takes only its own id, which is where its admin client sends it. AlterConfigs replaces the whole set
// of a resource's overrides, as Kafka's legacy API does; IncrementalAlterConfigs applies SET,
// DELETE, APPEND and SUBTRACT to single keys. validate-only checks everything and changes nothing.

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	register(kmsg.DescribeConfigs, 1, 4, (*Handler).handleDescribeConfigs)
	register(kmsg.AlterConfigs, 0, 2, (*Handler).handleAlterConfigs)
	register(kmsg.IncrementalAlterConfigs, 0, 1, (*Handler).handleIncrementalAlterConfigs)
}

const (
	resourceTopic  = int8(kmsg.ConfigResourceTypeTopic)
	resourceBroker = int8(kmsg.ConfigResourceTypeBroker)
)

func (h *Handler) handleDescribeConfigs(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch int8(rr.ResourceType) {
		case resourceTopic:
			if _, ok := h.meta.Image().Topic(rr.ResourceName); !ok {
				err = fmt.Errorf("topic %q does not exist: %w", rr.ResourceName, kerr.UnknownTopicOrPartition)
				break
			}
			sr.Configs, err = h.cluster.DescribeTopicConfigs(rr.ResourceName, rr.ConfigNames, r.IncludeSynonyms, r.IncludeDocumentation)
		case resourceBroker:
			if err = h.checkBrokerResource(rr.ResourceName); err == nil {
				sr.Configs, err = h.cluster.DescribeBrokerConfigs(rr.ConfigNames, r.IncludeSynonyms, r.IncludeDocumentation)
			}
		default:
			err = fmt.Errorf("resource type %d is not supported: %w", rr.ResourceType, kerr.InvalidRequest)
		}
		if err != nil {
			sr.ErrorCode = errorCode(err)
			sr.ErrorMessage = errorMessage(err)
			sr.Configs = nil
		}
		if sr.Configs == nil {
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// checkBrokerResource accepts this broker's id or "" (cluster-wide default).
func (h *Handler) checkBrokerResource(name string) error {
	id, err := brokerResourceID(name)
	if err != nil || id < 0 {
		return err
	}
	if id != h.opts.NodeID {
		return fmt.Errorf("Unexpected broker id, expected %d or empty string, but received %s: %w", h.opts.NodeID, name, kerr.InvalidRequest)
	}
	return nil
}

// brokerResourceID is the node id a broker resource names, -1 for "" (the cluster default).
func brokerResourceID(name string) (int32, error) {
	if name == "" {
		return -1, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("Broker id must be an integer, but it is: %s: %w", name, kerr.InvalidRequest)
	}
	return int32(id), nil
}

// checkAlterBrokerResource accepts "" and the id of any registered broker (Kafka's controller's
// ConfigResourceExistenceChecker): the node id, -1 for the cluster default.
func (h *Handler) checkAlterBrokerResource(name string) (int32, error) {
	id, err := brokerResourceID(name)
	if err != nil || id < 0 {
		return id, err
	}
	if _, ok := h.meta.Image().Broker(id); !ok && id != h.opts.NodeID {
		return 0, fmt.Errorf("No node with id %d found: %w", id, kerr.BrokerIDNotRegistered)
	}
	return id, nil
}

func (h *Handler) handleAlterConfigs(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		// The legacy API replaces the resource's whole set of overrides.
		set := make(map[string]*string)
		for k := range h.currentOverrides(int8(rr.ResourceType), rr.ResourceName) {
			set[k] = nil
		}
		for _, c := range rr.Configs {
			set[c.Name] = c.Value
		}
		err := h.alterConfigs(ctx, int8(rr.ResourceType), rr.ResourceName, set, r.ValidateOnly)
		sr.ErrorCode = errorCode(err)
		sr.ErrorMessage = errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (h *Handler) handleIncrementalAlterConfigs(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		current := h.currentOverrides(int8(rr.ResourceType), rr.ResourceName)
		set := make(map[string]*string)
		var err error
		for _, c := range rr.Configs {
			if _, dup := set[c.Name]; dup {
				err = fmt.Errorf("config %q appears more than once: %w", c.Name, kerr.InvalidRequest)
				break
			}
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				set[c.Name] = c.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				set[c.Name] = nil
			case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
				v := listOp(current[c.Name], c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
				set[c.Name] = &v
			default:
				err = fmt.Errorf("config %q: unknown operation %d: %w", c.Name, c.Op, kerr.InvalidRequest)
			}
		}
		if err == nil {
			err = h.alterConfigs(ctx, int8(rr.ResourceType), rr.ResourceName, set, r.ValidateOnly)
		}
		sr.ErrorCode = errorCode(err)
		sr.ErrorMessage = errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// listOp appends or removes the comma-separated items of v to or from the list cur.
func listOp(cur string, v *string, add bool) string {
	var items []string
	if cur != "" {
		items = strings.Split(cur, ",")
	}
	if v == nil {
		return cur
	}
	for _, it := range strings.Split(*v, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		idx := -1
		for i, have := range items {
			if have == it {
				idx = i
			}
		}
		switch {
		case add && idx < 0:
			items = append(items, it)
		case !add && idx >= 0:
			items = append(items[:idx], items[idx+1:]...)
		}
	}
	return strings.Join(items, ",")
}

func (h *Handler) currentOverrides(resourceType int8, name string) map[string]string {
	im := h.meta.Image()
	switch resourceType {
	case resourceTopic:
		if t, ok := im.Topic(name); ok {
			return t.Configs
		}
	case resourceBroker:
		if id, err := brokerResourceID(name); err == nil && id >= 0 {
			return im.NodeConfigs(id)
		}
		return im.BrokerConfigs()
	}
	return nil
}

func (h *Handler) alterConfigs(ctx context.Context, resourceType int8, name string, set map[string]*string, validateOnly bool) error {
	switch resourceType {
	case resourceTopic:
		// The controller checks that the topic exists, on its image: this node's may not have
		// a topic just created through another node yet. A validate-only request is answered here.
		if _, ok := h.meta.Image().Topic(name); !ok && validateOnly {
			return fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
		}
		for k, v := range set {
			if v != nil {
				if err := h.cluster.ValidateTopicConfig(k, *v); err != nil {
					return fmt.Errorf("%v: %w", err, kerr.InvalidConfig)
				}
			}
		}
		if validateOnly {
			return nil
		}
		if err := h.meta.AlterTopicConfigs(ctx, name, set); err != nil {
			return err
		}
	case resourceBroker:
		id, err := h.checkAlterBrokerResource(name)
		if err != nil {
			return err
		}
		for k := range set {
			// As in server.properties: a Kafka key that means nothing to Moldau is accepted,
			// with a warning, and not stored.
			if config.IsIgnoredBrokerKey(k) {
				h.log.Warn("AlterConfigs: ignoring Kafka broker config key that has no meaning for Moldau", "key", k, "broker", name)
				delete(set, k)
			}
		}
		for k, v := range set {
			if v != nil {
				if err := h.cluster.ValidateBrokerConfig(k, *v); err != nil {
					return fmt.Errorf("%v: %w", err, kerr.InvalidConfig)
				}
			}
		}
		if validateOnly {
			return nil
		}
		if id < 0 {
			err = h.meta.AlterBrokerConfigs(ctx, set)
		} else {
			err = h.meta.AlterNodeConfigs(ctx, id, set)
		}
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("resource type %d is not supported: %w", resourceType, kerr.InvalidRequest)
	}
	return h.cluster.Sync()
}
