package metadata

// Forwarding. Every node accepts every metadata write; only the raft leader can commit one, so a
// write made on another node is sent to the leader as the Kafka request that carries it
// (CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs, AllocateProducerIds,
// ...) on the leader's CONTROLLER listener, where the same Controller method runs and validates on
// the leader's image. Before answering, the forwarding node waits until its own image has applied
// the leader's commit, so a client that created a topic through it sees the topic there at once.
//
// A request that arrived on the CONTROLLER listener (ctx marked by Forwarded) is never forwarded
// again: a node that lost leadership answers NOT_CONTROLLER and the sender finds the new leader
// and retries, until its deadline (Config.ApplyTimeout).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/clientpool"
)

// ClusterMetadataTopic is the name Kafka gives the metadata log; DescribeQuorum is asked about it.
const ClusterMetadataTopic = "__cluster_metadata"

type forwardedKey struct{}

// Forwarded marks ctx as serving a request that arrived on the CONTROLLER listener: Controller
// methods called with it run on this node or fail with ErrNotController, never forward.
func Forwarded(ctx context.Context) context.Context {
	return context.WithValue(ctx, forwardedKey{}, true)
}

// IsForwarded reports whether ctx was marked by Forwarded: the request arrived on the CONTROLLER
// listener.
func IsForwarded(ctx context.Context) bool {
	v, _ := ctx.Value(forwardedKey{}).(bool)
	return v
}

// remoteLog is a committer with other voters: what forwarding needs besides commit.
type remoteLog interface {
	// leaderAddr is the raft leader's node id and address (its CONTROLLER listener).
	leaderAddr() (id int32, addr string, ok bool)
	// commandAtOrBefore is the index of the last state-changing entry at or before index, once
	// this node's raft has applied index (ok false before that). 0 when there is none in the log
	// (compacted into a snapshot this node has already restored).
	commandAtOrBefore(index uint64) (uint64, bool)
}

// sendFunc sends one request to the raft leader's CONTROLLER listener.
type sendFunc func(ctx context.Context, req kmsg.Request) (kmsg.Response, error)

// forwarder holds one client per leader address.
type forwarder struct {
	pool *clientpool.Pool
}

func newForwarder() *forwarder { return &forwarder{pool: clientpool.New("moldau-controller-forward")} }

func (f *forwarder) client(addr string) (*kgo.Client, error) {
	cl, err := f.pool.Client(addr)
	if errors.Is(err, clientpool.ErrClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return cl, nil
}

func (f *forwarder) send(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, err := f.client(addr)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("metadata: no connection to controller %s", addr)
	}
	resp, err := seeds[0].Request(ctx, req)
	if err != nil {
		return nil, &transportError{addr: addr, err: err}
	}
	return resp, nil
}

func (f *forwarder) close() { f.pool.Close() }

// transportError is a failure to reach the leader (retried: the leader may have moved).
type transportError struct {
	addr string
	err  error
}

func (e *transportError) Error() string { return fmt.Sprintf("controller %s: %v", e.addr, e.err) }
func (e *transportError) Unwrap() error { return e.err }

// route runs one write: local when this node is the raft leader (or ctx is Forwarded), remote on
// the leader otherwise. It retries while there is no leader or the leader moved, until ctx (or
// Config.ApplyTimeout) ends. After a remote success it waits until this node's image has applied
// the leader's commit.
func (c *Controller) route(ctx context.Context, local func() error, remote func(ctx context.Context, send sendFunc) error) error {
	rl, ok := c.log.(remoteLog)
	if IsForwarded(ctx) && ok && !c.IsController() {
		// As Kafka's controller: a request forwarded to a node that does not lead is answered
		// NOT_CONTROLLER before anything is validated against this node's image, which may be
		// behind the leader's (it answered INVALID_REPLICATION_FACTOR "all brokers fenced" while
		// the registrations were still on their way here).
		return fmt.Errorf("%w: node %d does not lead the metadata quorum", ErrNotController, c.cfg.NodeID)
	}
	if IsForwarded(ctx) || c.fwd == nil || !ok {
		return local()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.ApplyTimeout)
		defer cancel()
	}
	backoff := 10 * time.Millisecond
	attempt := 0
	for {
		var err error
		id, addr, known := rl.leaderAddr()
		switch {
		case known && id == c.cfg.NodeID:
			err = local()
		case known:
			var done bool
			if done, err = c.forwardTo(ctx, addr, remote); done {
				return err
			}
		case c.voterAddr(attempt) != "":
			// No leader known here (a non-voter not yet added, or an election): ask the voters
			// in turn; one that does not lead answers NOT_CONTROLLER.
			var done bool
			if done, err = c.forwardTo(ctx, c.voterAddr(attempt), remote); done {
				return err
			}
		default:
			err = fmt.Errorf("%w: no raft leader is known yet", ErrNotController)
		}
		attempt++
		if !retriable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metadata: no controller answered before the deadline: %w: %w", err, kerr.RequestTimedOut)
		case <-c.closed:
			return ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// voterAddr is the CONTROLLER address of the attempt-th voter other than this node, in node id
// order, round robin ("" when there is none).
func (c *Controller) voterAddr(attempt int) string {
	ids := make([]int32, 0, len(c.cfg.Voters))
	for id := range c.cfg.Voters {
		if id != c.cfg.NodeID {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return c.cfg.Voters[ids[attempt%len(ids)]]
}

// forwardTo sends one write to the controller at addr. done is false when the write may succeed
// on a retry (leadership moved, the node could not be reached). Once the controller has answered
// (success, or a refusal made on its image such as TOPIC_ALREADY_EXISTS) this node catches up
// with it, so what it answers next agrees with that answer.
func (c *Controller) forwardTo(ctx context.Context, addr string, remote func(ctx context.Context, send sendFunc) error) (done bool, err error) {
	send := func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) { return c.fwd.send(ctx, addr, req) }
	err = remote(ctx, send)
	if err != nil && retriable(err) {
		return false, err
	}
	if cerr := c.catchUp(ctx, send); err == nil {
		err = cerr
	}
	return true, err
}

// retriable reports whether a write may succeed on a retry: leadership moved or the leader could
// not be reached.
func retriable(err error) bool {
	var te *transportError
	var ne net.Error
	return errors.Is(err, ErrNotController) || errors.As(err, &te) || errors.As(err, &ne)
}

// catchUp asks the leader for its commit index (DescribeQuorum's high watermark) and waits until
// this node has applied it.
func (c *Controller) catchUp(ctx context.Context, send sendFunc) error {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = ClusterMetadataTopic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	resp, err := send(ctx, req)
	if err != nil {
		return fmt.Errorf("metadata: committed, but the leader's commit index is unknown: %w", err)
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return fmt.Errorf("metadata: committed, but DescribeQuorum failed: %w", err)
	}
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return errors.New("metadata: committed, but DescribeQuorum answered no partition")
	}
	rp := r.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		return fmt.Errorf("metadata: committed, but DescribeQuorum failed: %w", err)
	}
	return c.WaitApplied(ctx, uint64(rp.HighWatermark))
}

// WaitApplied waits until this node's image reflects every metadata entry up to raft index
// index (entries that change no state, like a leader's no-op, need not reach the image).
func (c *Controller) WaitApplied(ctx context.Context, index uint64) error {
	rl, ok := c.log.(remoteLog)
	if !ok {
		return nil // a log without raft: every commit is applied before it returns
	}
	ch := c.Subscribe()
	defer c.Unsubscribe(ch)
	for {
		target, ok := rl.commandAtOrBefore(index)
		if ok && c.Image().Index() >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("metadata: wait for this node to apply index %d (at %d): %w", index, c.Image().Index(), ctx.Err())
		case <-c.closed:
			return ErrClosed
		case <-ch:
		case <-time.After(50 * time.Millisecond):
			// raft's applied index moves without an FSM apply (no-ops): poll for it.
		}
	}
}

// sentinelCodes pairs the Controller's errors with their Kafka codes: the handler answers them
// (ErrorCode), forwarding turns the leader's codes back into them (SentinelFor).
var sentinelCodes = []struct {
	err  error
	code *kerr.Error
}{
	{ErrTopicExists, kerr.TopicAlreadyExists},
	{ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{ErrInvalidPartitions, kerr.InvalidPartitions},
	{ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{ErrInvalidTopic, kerr.InvalidTopicException},
	{ErrInvalidConfig, kerr.InvalidConfig},
	{ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{ErrInvalidRequest, kerr.InvalidRequest},
	{ErrNotController, kerr.NotController},
	{ErrInvalidUpdateVersion, kerr.InvalidUpdateVersion},
}

// ErrorCode is the Kafka error code of one of the Controller's sentinel errors in err's chain.
func ErrorCode(err error) (int16, bool) {
	for _, sc := range sentinelCodes {
		if errors.Is(err, sc.err) {
			return sc.code.Code, true
		}
	}
	return 0, false
}

// SentinelFor is the Controller error a Kafka error code stands for, nil when there is none.
func SentinelFor(code int16) error {
	for _, sc := range sentinelCodes {
		if sc.code.Code == code {
			return sc.err
		}
	}
	return nil
}

// remoteErr turns an error code from the leader back into the error a local call would have
// returned, with the leader's message.
func remoteErr(code int16, msg *string) error {
	kerrErr := kerr.ErrorForCode(code)
	if kerrErr == nil {
		return nil
	}
	sentinel := SentinelFor(code)
	text := kerrErr.Error()
	if msg != nil && *msg != "" {
		text = *msg
	}
	if sentinel == nil {
		sentinel = kerrErr
	}
	return &remoteError{msg: text, err: sentinel}
}

// remoteError is an error the leader answered: its message as the leader wrote it, wrapping the
// sentinel (or kerr error) a local call would have returned.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.err }

// VoterAddrs are the metadata quorum's voters by node id with their CONTROLLER addresses
// (host:port), as configured (a copy; empty for a single voter with an in-memory transport).
func (c *Controller) VoterAddrs() map[int32]string { return maps.Clone(c.cfg.Voters) }
