package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// missingTopics asks for the metadata of topics, letting the broker create them when
// autoCreate, and returns those that still do not exist.
func missingTopics(ctx context.Context, cl *kgo.Client, topics []string, autoCreate bool) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = autoCreate
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			missing = append(missing, *t.Topic)
		}
	}
	return missing, nil
}

// warnMissingTopics prints a warning for each topic that does not exist (and was not created):
// the consumer then waits for it, as Kafka's console consumer does, but not silently. It returns
// those topics.
func warnMissingTopics(e *env, cl *kgo.Client, topics []string, autoCreate bool) []string {
	ctx, cancel := e.adminCtx()
	defer cancel()
	missing, err := missingTopics(ctx, cl, topics, autoCreate)
	if err != nil {
		return nil // the consumer reports connection problems itself
	}
	// The answer does not say why the topic was not created: a broker with auto-creation off
	// answers this way, and so may one still creating it (Kafka's does).
	why := "the broker creates it only with auto.create.topics.enable=true"
	if !autoCreate {
		why = "allow.auto.create.topics=false: this consumer does not ask the broker to create it"
	}
	for _, t := range missing {
		fmt.Fprintf(e.stderr, "%s: warning: topic %s does not exist (UNKNOWN_TOPIC_OR_PARTITION); waiting for it to be created (%s)\n", e.name, t, why)
	}
	return missing
}

// awaitTopics polls the metadata of topics every second until all exist, then makes the client
// refresh its metadata, or until ctx is done.
func awaitTopics(ctx context.Context, cl *kgo.Client, topics []string, autoCreate bool) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		missing, err := missingTopics(rctx, cl, topics, autoCreate)
		cancel()
		if err == nil && len(missing) == 0 {
			cl.ForceMetadataRefresh()
			return
		}
	}
}
