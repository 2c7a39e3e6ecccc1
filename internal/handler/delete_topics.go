package handler

// DeleteTopics: v1-6.
//
// Topics are named by name (v0-5) or by name or id (v6+). The controller removes the topic from
// the metadata; the broker then closes and deletes the partitions' files.
//
// Internal topics (__consumer_offsets, ...) are refused with INVALID_TOPIC_EXCEPTION. Kafka 4's
// controller leaves that to the authorizer (old Kafka tools refused it client-side, KAFKA-1961);
// without an authorizer, deleting __consumer_offsets under a running coordinator would lose every
// group's offsets, so Moldau refuses it with the error Kafka gives for the other writes to them.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DeleteTopics, 1, 6, (*Handler).handleDeleteTopics) }

func (h *Handler) handleDeleteTopics(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.Version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range r.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	}
	deleted := false
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		im := h.meta.Image()
		var err error
		var name string
		switch {
		case tg.name != nil:
			name = *tg.name
			if t, ok := im.Topic(name); ok {
				st.TopicID = t.ID
			} else {
				err = fmt.Errorf("topic %q does not exist: %w", name, kerr.UnknownTopicOrPartition)
			}
		default:
			if t, ok := im.TopicByID(tg.id); ok {
				name = t.Name
				st.Topic = &t.Name
			} else {
				err = fmt.Errorf("topic id %x does not exist: %w", tg.id, kerr.UnknownTopicID)
			}
		}
		if err == nil && metadata.IsInternalTopic(name) {
			err = fmt.Errorf("cannot delete internal topic %s: %w", name, kerr.InvalidTopicException)
		}
		if err == nil {
			err = h.meta.DeleteTopic(ctx, name)
			deleted = deleted || err == nil
		}
		st.ErrorCode = errorCode(err)
		if r.Version >= 5 {
			st.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if deleted {
		if err := h.cluster.Sync(); err != nil {
			h.log.Warn("remove partitions of deleted topics", "err", err)
		}
	}
	return resp, nil
}
