package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moldau/moldau/internal/faultproxy"
)

// ClusterConfig describes a cluster of `moldau server` processes on 127.0.0.1, each with its own
// Kafka-style properties file, data dir and ports. moldau verify --nodes and the multi-process
// tests in test/integration both start their clusters with it.
type ClusterConfig struct {
	Binary string // the moldau binary
	Nodes  int    // node ids are 1..Nodes
	// Dir holds node-<id>/{server.properties,data,server.log}; it must exist.
	Dir string
	// Properties are added to every node's file and win over the generated keys.
	Properties map[string]string
	// NodeProperties, if set, adds keys for one node (after Properties).
	NodeProperties func(id int32) map[string]string
	// Env is added to every node's environment, which is otherwise this process's without the
	// variables a broker reads as configuration (KAFKA_*, MOLDAU_*, CLUSTER_ID).
	Env []string
	// Proxies puts a faultproxy on every link between nodes: node from reaches node to's
	// CONTROLLER listener (controller.quorum.voters) through a proxy of its own, and every node
	// gets a third listener, REPLICATION, named in inter.broker.listener.name and advertised as
	// a proxy in front of it. Isolate and Heal cut and restore them.
	Proxies bool
	// Output, if set, also gets node id's output (e.g. a file or a test's log).
	Output func(id int32) io.Writer
	// ReadyTimeout bounds each node's start; 60s if zero.
	ReadyTimeout time.Duration
}

// Cluster is a set of running (or stopped, killed, paused) nodes. Close ends them all.
type Cluster struct {
	cfg   ClusterConfig
	nodes []*Node
	// controller[from][to] is the proxy node from uses for node to's CONTROLLER listener;
	// interBroker[id] the one advertised for node id's REPLICATION listener. Set by NewCluster
	// when cfg.Proxies, never changed after.
	controller  map[int32]map[int32]*faultproxy.Proxy
	interBroker map[int32]*faultproxy.Proxy
}

// Node is one `moldau server` process, restartable on the same ports, config and data dir.
type Node struct {
	ID              int32
	ClientAddr      string // PLAINTEXT listener, host:port
	ControllerAddr  string // CONTROLLER listener
	ReplicationAddr string // REPLICATION listener, "" unless ClusterConfig.InterBrokerAddr is set
	HTTPAddr        string // http.listener: console, admin API, /metrics, /healthz, /readyz
	Dir             string
	DataDir         string
	ConfigPath      string

	cfg *ClusterConfig
	log logBuffer

	mu struct {
		sync.Mutex
		cmd      *exec.Cmd
		exited   chan struct{} // closed when cmd has exited
		waitErr  error         // valid once exited is closed
		paused   bool
		expected bool // the current run's exit is one we asked for
		runLog   int  // where the current run's output starts in log
		problems []string
	}
}

// logBuffer collects a node's output across its restarts.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

func (l *logBuffer) since(off int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if off > l.buf.Len() {
		off = l.buf.Len()
	}
	return string(l.buf.Bytes()[off:])
}

// NewCluster picks free loopback ports and writes every node's properties file; Start starts them.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("a cluster needs at least 1 node, got %d", cfg.Nodes)
	}
	if cfg.Binary == "" {
		return nil, errors.New("no moldau binary given")
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	perNode := 3 // client, controller, http
	if cfg.Proxies {
		perNode = 4 // and replication
	}
	ports, err := freePorts(cfg.Nodes * perNode)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg}
	for i := range cfg.Nodes {
		id := int32(i + 1)
		dir := filepath.Join(cfg.Dir, fmt.Sprintf("node-%d", id))
		n := &Node{
			ID:             id,
			ClientAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i*perNode])),
			ControllerAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i*perNode+1])),
			HTTPAddr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i*perNode+2])),
			Dir:            dir,
			DataDir:        filepath.Join(dir, "data"),
			ConfigPath:     filepath.Join(dir, "server.properties"),
			cfg:            &c.cfg,
		}
		if cfg.Proxies {
			n.ReplicationAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i*perNode+3]))
		}
		c.nodes = append(c.nodes, n)
	}
	if cfg.Proxies {
		if err := c.startProxies(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("node %d: %w", n.ID, err)
		}
		if err := os.WriteFile(n.ConfigPath, []byte(c.properties(n)), 0o644); err != nil {
			return nil, fmt.Errorf("node %d: write %s: %w", n.ID, n.ConfigPath, err)
		}
	}
	return c, nil
}

// StartCluster is NewCluster, then Start. On an error the nodes started so far are stopped.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c, err := NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Start starts every node, then waits until all are ready: a node of a multi-node cluster may
// not finish starting until a quorum of the others runs too.
func (c *Cluster) Start(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			return err
		}
	}
	errs := make(chan error, len(c.nodes))
	for _, n := range c.nodes {
		go func() { errs <- n.WaitReady(ctx) }()
	}
	var all []error
	for range c.nodes {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// properties is node n's server.properties: Kafka's keys for a combined broker+controller node.
func (c *Cluster) properties(n *Node) string {
	var voters []string
	for _, m := range c.nodes {
		addr := m.ControllerAddr
		if p := c.controller[n.ID][m.ID]; p != nil {
			addr = p.Addr()
		}
		voters = append(voters, fmt.Sprintf("%d@%s", m.ID, addr))
	}
	p := map[string]string{
		"node.id":                        strconv.Itoa(int(n.ID)),
		"process.roles":                  "broker,controller",
		"listeners":                      "PLAINTEXT://" + n.ClientAddr + ",CONTROLLER://" + n.ControllerAddr,
		"advertised.listeners":           "PLAINTEXT://" + n.ClientAddr,
		"controller.listener.names":      "CONTROLLER",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.quorum.voters":       strings.Join(voters, ","),
		"log.dirs":                       n.DataDir,
		"http.listener":                  n.HTTPAddr, // a port of its own, never the default 8080
	}
	if n.ReplicationAddr != "" {
		p["listeners"] += ",REPLICATION://" + n.ReplicationAddr
		p["advertised.listeners"] += ",REPLICATION://" + c.interBroker[n.ID].Addr()
		p["listener.security.protocol.map"] += ",REPLICATION:PLAINTEXT"
		p["inter.broker.listener.name"] = "REPLICATION"
	}
	maps.Copy(p, c.cfg.Properties)
	if c.cfg.NodeProperties != nil {
		maps.Copy(p, c.cfg.NodeProperties(n.ID))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# node %d of a %d-node cluster started by moldau verify\n", n.ID, len(c.nodes))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}

// Nodes returns the nodes, ordered by id.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node with id, or nil.
func (c *Cluster) Node(id int32) *Node {
	if id < 1 || int(id) > len(c.nodes) {
		return nil
	}
	return c.nodes[id-1]
}

// Bootstrap is every node's client address, comma-separated.
func (c *Cluster) Bootstrap() string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.ClientAddr
	}
	return strings.Join(addrs, ",")
}

// Problems lists what went wrong with the nodes themselves: unexpected exits, panics or data
// races in their output.
func (c *Cluster) Problems() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.Problems()...)
	}
	return out
}

// Close kills every node still running (resuming a paused one first), waits for it to exit,
// and stops the proxies.
func (c *Cluster) Close() {
	for _, n := range c.nodes {
		n.closeNode()
	}
	for _, to := range c.controller {
		for _, p := range to {
			p.Close()
		}
	}
	for _, p := range c.interBroker {
		p.Close()
	}
}

func (c *Cluster) startProxies() error {
	c.controller = map[int32]map[int32]*faultproxy.Proxy{}
	c.interBroker = map[int32]*faultproxy.Proxy{}
	for _, from := range c.nodes {
		c.controller[from.ID] = map[int32]*faultproxy.Proxy{}
		for _, to := range c.nodes {
			if from.ID == to.ID {
				continue
			}
			p, err := faultproxy.New("127.0.0.1:0", to.ControllerAddr)
			if err != nil {
				return fmt.Errorf("proxy from node %d to node %d's controller listener: %w", from.ID, to.ID, err)
			}
			c.controller[from.ID][to.ID] = p
		}
		p, err := faultproxy.New("127.0.0.1:0", from.ReplicationAddr)
		if err != nil {
			return fmt.Errorf("proxy for node %d's inter-broker listener: %w", from.ID, err)
		}
		c.interBroker[from.ID] = p
	}
	return nil
}

// ControllerProxy is the proxy node from uses to reach node to's controller listener (nil
// without Proxies).
func (c *Cluster) ControllerProxy(from, to int32) *faultproxy.Proxy { return c.controller[from][to] }

// InterBrokerProxy is the proxy advertised for node id's inter-broker listener (nil without
// Proxies).
func (c *Cluster) InterBrokerProxy(id int32) *faultproxy.Proxy { return c.interBroker[id] }

// Isolate cuts node id off from every other node: the controller links both ways and its
// inter-broker listener. Clients still reach it on its PLAINTEXT listener.
func (c *Cluster) Isolate(id int32) error {
	if c.controller == nil {
		return errors.New("isolate needs a cluster started with Proxies")
	}
	for from, to := range c.controller {
		for t, p := range to {
			if from == id || t == id {
				p.Cut()
			}
		}
	}
	if p := c.interBroker[id]; p != nil {
		p.Cut()
	}
	return nil
}

// Heal restores every proxy.
func (c *Cluster) Heal() error {
	var errs []error
	for _, to := range c.controller {
		for _, p := range to {
			errs = append(errs, p.Restore())
		}
	}
	for _, p := range c.interBroker {
		errs = append(errs, p.Restore())
	}
	return errors.Join(errs...)
}

// start launches the process without waiting for it to be ready.
func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("node %d: start: already running", n.ID)
	}
	fmt.Fprintf(&n.log, "---- %s: moldau server --config %s\n", time.Now().Format("15:04:05.000"), n.ConfigPath)
	var out io.Writer = &n.log
	if n.cfg.Output != nil {
		if w := n.cfg.Output(n.ID); w != nil {
			out = io.MultiWriter(&n.log, w)
		}
	}
	n.mu.runLog = n.log.Len()
	cmd := exec.Command(n.cfg.Binary, "server", "--config", n.ConfigPath)
	cmd.Env = nodeEnv(n.cfg.Env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node %d: start %s: %w", n.ID, n.cfg.Binary, err)
	}
	exited := make(chan struct{})
	n.mu.cmd, n.mu.exited, n.mu.paused, n.mu.expected = cmd, exited, false, false
	go n.wait(cmd, exited)
	return nil
}

// wait owns cmd until it exits; an exit nobody asked for is recorded as a problem.
func (n *Node) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.cmd == cmd {
		n.mu.waitErr = err
		if !n.mu.expected {
			n.mu.problems = append(n.mu.problems, fmt.Sprintf("node %d exited unexpectedly (%v); last output:\n%s",
				n.ID, err, tail(n.log.since(n.mu.runLog), 20)))
		}
	}
	n.checkLogLocked()
	close(exited)
}

// checkLogLocked records what must never be in the current run's output. REQUIRES: n.mu is held.
func (n *Node) checkLogLocked() {
	n.mu.problems = append(n.mu.problems, n.badOutputLocked()...)
}

// badOutputLocked lists what must never be in the current run's output. REQUIRES: n.mu is held.
func (n *Node) badOutputLocked() []string {
	out := n.log.since(n.mu.runLog)
	var bad []string
	for _, s := range []string{"WARNING: DATA RACE", "panic:", "handler panic"} {
		if strings.Contains(out, s) {
			bad = append(bad, fmt.Sprintf("node %d's output contains %q", n.ID, s))
		}
	}
	return bad
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// WaitReady waits until the current run has printed its "listening on ... ready in" line and its
// client port accepts connections, for at most ReadyTimeout.
func (n *Node) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReadyTimeout)
	defer cancel()
	n.mu.Lock()
	exited, runLog := n.mu.exited, n.mu.runLog
	n.mu.Unlock()
	if exited == nil {
		return fmt.Errorf("node %d: not started", n.ID)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		out := n.log.since(runLog)
		if strings.Contains(out, "listening on") && strings.Contains(out, "ready in") {
			d := net.Dialer{Timeout: time.Second}
			if c, err := d.DialContext(ctx, "tcp", n.ClientAddr); err == nil {
				c.Close()
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("node %d exited before it was ready: %v; output:\n%s", n.ID, n.exitErr(), tail(n.log.since(runLog), 20))
		case <-ctx.Done():
			return fmt.Errorf("node %d was not ready on %s within %s: %w; output:\n%s", n.ID, n.ClientAddr, n.cfg.ReadyTimeout, ctx.Err(), tail(n.log.since(runLog), 20))
		case <-tick.C:
		}
	}
}

func (n *Node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.waitErr
}

func (n *Node) runningLocked() bool {
	if n.mu.exited == nil {
		return false
	}
	select {
	case <-n.mu.exited:
		return false
	default:
		return true
	}
}

// Running reports whether the process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

// Paused reports whether the node is stopped with SIGSTOP.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.paused && n.runningLocked()
}

// signal sends sig to the running process, marking its exit as expected when stopping is true.
func (n *Node) signal(what string, send func(*os.Process) error, stopping bool) (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return nil, fmt.Errorf("node %d: %s: not running", n.ID, what)
	}
	if stopping {
		n.mu.expected = true
	}
	if err := send(n.mu.cmd.Process); err != nil {
		return nil, fmt.Errorf("node %d: %s: %w", n.ID, what, err)
	}
	fmt.Fprintf(&n.log, "---- %s: %s\n", time.Now().Format("15:04:05.000"), what)
	return n.mu.exited, nil
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (n *Node) Kill() error {
	exited, err := n.signal("SIGKILL", signalKill, true)
	if err != nil {
		return err
	}
	<-exited
	n.mu.Lock()
	n.mu.paused = false
	n.mu.Unlock()
	return nil
}

// Stop sends SIGTERM (a controlled shutdown) and waits for the process to exit; if it has not
// when ctx ends, it is killed and Stop reports that.
func (n *Node) Stop(ctx context.Context) error {
	exited, err := n.signal("SIGTERM", signalTerm, true)
	if err != nil {
		return err
	}
	select {
	case <-exited:
	case <-ctx.Done():
		_ = n.Kill()
		return fmt.Errorf("node %d did not exit after SIGTERM: %w", n.ID, ctx.Err())
	}
	if err := n.exitErr(); err != nil {
		return fmt.Errorf("node %d exited with %v after SIGTERM, want status 0", n.ID, err)
	}
	return nil
}

// Pause sends SIGSTOP: the process holds its sockets and files but does nothing.
func (n *Node) Pause() error {
	if _, err := n.signal("SIGSTOP", signalStop, false); err != nil {
		return err
	}
	n.mu.Lock()
	n.mu.paused = true
	n.mu.Unlock()
	return nil
}

// Resume sends SIGCONT to a paused node.
func (n *Node) Resume() error {
	if _, err := n.signal("SIGCONT", signalCont, false); err != nil {
		return err
	}
	n.mu.Lock()
	n.mu.paused = false
	n.mu.Unlock()
	return nil
}

// Restart starts a node that is not running again, on the same config and data dir, and waits
// until it is ready.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.start(); err != nil {
		return err
	}
	return n.WaitReady(ctx)
}

// Output is everything the node printed, across its restarts, with a line per start and signal.
func (n *Node) Output() string { return n.log.since(0) }

// Problems lists the node's unexpected exits and what must never be in its output (a panic, a
// data race), from every run so far including the current one.
func (n *Node) Problems() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Clone(n.mu.problems)
	if n.runningLocked() {
		out = append(out, n.badOutputLocked()...)
	}
	return out
}

func (n *Node) closeNode() {
	n.mu.Lock()
	running, paused := n.runningLocked(), n.mu.paused
	n.mu.Unlock()
	if !running {
		return
	}
	if paused {
		_ = n.Resume()
	}
	_ = n.Kill()
}

// nodeEnv is this process's environment without what a broker reads as configuration, plus extra.
func nodeEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KAFKA_") || strings.HasPrefix(kv, "MOLDAU_") || strings.HasPrefix(kv, "CLUSTER_ID=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that nothing listened on a moment ago
// (all n are held open together, so none repeats). They are below Linux's ephemeral range
// (32768 and up): between this check and the node's start the kernel cannot hand one of them
// to another process's or test's client socket, as it could a port the kernel picked.
func freePorts(n int) ([]int, error) {
	const lowest, ephemeral = 20000, 32768
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 100*n {
			return nil, fmt.Errorf("find %d free ports between %d and %d: only %d found", n, lowest, ephemeral, len(ports))
		}
		port := lowest + rand.IntN(ephemeral-lowest)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	return ports, nil
}
