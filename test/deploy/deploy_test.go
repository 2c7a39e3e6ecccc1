// Package deploy checks the deployment files at the repository root against each other:
// docker-compose.yml and docker-compose.cluster.yml must configure their containers with the
// settings scripts/cluster-local.sh gives its processes (the same KAFKA_* keys and values, only
// the hosts and ports differ), every variable must be one the server understands, and the
// Dockerfile's data volume must be the one the compose files mount. The HTTP listener
// (MOLDAU_HTTP_LISTENER) binds 0.0.0.0 on a published port in a container, 127.0.0.1 on a port
// of its own in the script.
package deploy

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/moldau/moldau/internal/config"
)

// node is one broker as a deployment file describes it: its variables and a way to tell which
// node's listener an address reaches.
type node struct {
	id  int
	env map[string]string
}

// cluster is a deployment's nodes (by id) and its address resolver: which node id and listener
// name host:port reaches, as seen by the clients and nodes of that deployment.
type cluster struct {
	what    string
	nodes   map[int]*node
	resolve func(host string, port int) (id int, listener string, err error)
	// dataDir checks node id's log dir and says what it is, for the comparison.
	dataDir func(id int, dir string) error
	// http checks node id's http.listener (MOLDAU_HTTP_LISTENER): reachable where the
	// deployment's users are, on a port of its own.
	http func(id int, host string, port int) error
}

const baseDir = "/cluster-dir"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

// composeFile is the part of a compose file these checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string    `yaml:"image"`
		Build       yaml.Node `yaml:"build"`
		Hostname    string    `yaml:"hostname"`
		Ports       []string  `yaml:"ports"`
		Environment yaml.Node `yaml:"environment"`
		Volumes     []string  `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// loadCompose reads a compose file into a cluster: nodes are named by KAFKA_NODE_ID, container
// hosts by hostname (or the service name), and localhost:P by the service publishing P.
func loadCompose(t *testing.T, path string) *cluster {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", path)
	}
	c := &cluster{what: filepath.Base(path), nodes: map[int]*node{}}
	byHost := map[string]int{}
	published := map[int][2]int{} // host port -> node id, container port
	mounts := map[int]map[string]string{}
	for name, s := range f.Services {
		env, err := environment(&s.Environment)
		if err != nil {
			t.Fatalf("%s: service %s: %v", path, name, err)
		}
		id, err := strconv.Atoi(env["KAFKA_NODE_ID"])
		if err != nil {
			t.Fatalf("%s: service %s: KAFKA_NODE_ID %q: %v", path, name, env["KAFKA_NODE_ID"], err)
		}
		if c.nodes[id] != nil {
			t.Fatalf("%s: node id %d twice", path, id)
		}
		if s.Image == "" || s.Build.IsZero() {
			t.Errorf("%s: service %s: want image and build (so 'docker compose up' builds this repository's image)", path, name)
		}
		c.nodes[id] = &node{id: id, env: env}
		host := s.Hostname
		if host == "" {
			host = name
		}
		byHost[host], byHost[name] = id, id
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			if len(parts) != 2 {
				t.Fatalf("%s: service %s: port %q: want HOST:CONTAINER", path, name, p)
			}
			hp, err1 := strconv.Atoi(parts[0])
			cp, err2 := strconv.Atoi(parts[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: service %s: port %q is not two numbers", path, name, p)
			}
			published[hp] = [2]int{id, cp}
		}
		mounts[id] = map[string]string{}
		for _, v := range s.Volumes {
			src, dst, ok := strings.Cut(v, ":")
			if !ok {
				t.Fatalf("%s: service %s: volume %q: want NAME:PATH", path, name, v)
			}
			if _, named := f.Volumes[src]; !named {
				t.Errorf("%s: service %s: volume %s is not a named volume of the file's volumes", path, name, src)
			}
			mounts[id][dst] = src
		}
	}
	listenerAt := func(id, port int) (string, error) {
		ls, err := config.ParseListeners(c.nodes[id].env["KAFKA_LISTENERS"])
		if err != nil {
			return "", fmt.Errorf("node %d: KAFKA_LISTENERS: %v", id, err)
		}
		for _, l := range ls {
			if l.Port == port {
				return l.Name, nil
			}
		}
		return "", fmt.Errorf("node %d has no listener on container port %d", id, port)
	}
	c.resolve = func(host string, port int) (int, string, error) {
		if host == "localhost" || host == "127.0.0.1" {
			pub, ok := published[port]
			if !ok {
				return 0, "", fmt.Errorf("%s:%d: no service publishes host port %d", host, port, port)
			}
			l, err := listenerAt(pub[0], pub[1])
			return pub[0], l, err
		}
		id, ok := byHost[host]
		if !ok {
			return 0, "", fmt.Errorf("%s:%d: %s is no service's host name", host, port, host)
		}
		l, err := listenerAt(id, port)
		return id, l, err
	}
	c.http = func(id int, host string, port int) error {
		if host != "0.0.0.0" && host != "" {
			return fmt.Errorf("node %d: MOLDAU_HTTP_LISTENER binds %s: in a container it must bind 0.0.0.0 to be published", id, host)
		}
		for _, pub := range published {
			if pub == [2]int{id, port} {
				return nil
			}
		}
		return fmt.Errorf("node %d: no host port publishes its http.listener (container port %d)", id, port)
	}
	used := map[string]bool{}
	c.dataDir = func(id int, dir string) error {
		vol, ok := mounts[id][dir]
		if !ok {
			return fmt.Errorf("node %d: KAFKA_LOG_DIRS=%s is not a mounted volume (the data would be lost with the container)", id, dir)
		}
		if used[vol] {
			return fmt.Errorf("node %d: volume %s holds another node's data too", id, vol)
		}
		used[vol] = true
		return nil
	}
	return c
}

// environment reads a service's environment in either of compose's forms (a mapping, or a list
// of NAME=value), merge keys included.
func environment(n *yaml.Node) (map[string]string, error) {
	env := map[string]string{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return nil, err
		}
		for k, v := range m {
			switch v.(type) {
			case string, int, bool:
				env[k] = fmt.Sprint(v)
			default:
				return nil, fmt.Errorf("environment %s: %v is not a scalar", k, v)
			}
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return nil, err
		}
		for _, kv := range l {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("environment entry %q is not NAME=value", kv)
			}
			env[k] = v
		}
	default:
		return nil, fmt.Errorf("no environment")
	}
	return env, nil
}

// loadScript runs `cluster-local.sh env n` and reads its nodes; 127.0.0.1:P is the node with a
// listener on P.
func loadScript(t *testing.T, root string, n int) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "cluster-local.sh"), "env", strconv.Itoa(n))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MOLDAU_CLUSTER_DIR=" + baseDir, "MOLDAU_BASE_PORT=40000"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cluster-local.sh env %d: %v\n%s", n, err, out)
	}
	c := &cluster{what: fmt.Sprintf("cluster-local.sh start %d", n), nodes: map[int]*node{}}
	var cur *node
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if rest, ok := strings.CutPrefix(line, "# node "); ok {
			id, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("cluster-local.sh env: %q", line)
			}
			cur = &node{id: id, env: map[string]string{}}
			c.nodes[id] = cur
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == nil {
			t.Fatalf("cluster-local.sh env: line %q is not NAME=value after a '# node N' line", line)
		}
		cur.env[k] = v
	}
	if len(c.nodes) != n {
		t.Fatalf("cluster-local.sh env %d printed %d nodes", n, len(c.nodes))
	}
	c.resolve = func(host string, port int) (int, string, error) {
		if host != "127.0.0.1" {
			return 0, "", fmt.Errorf("%s:%d: want 127.0.0.1", host, port)
		}
		for id, nd := range c.nodes {
			ls, err := config.ParseListeners(nd.env["KAFKA_LISTENERS"])
			if err != nil {
				return 0, "", fmt.Errorf("node %d: KAFKA_LISTENERS: %v", id, err)
			}
			for _, l := range ls {
				if l.Port == port {
					return id, l.Name, nil
				}
			}
		}
		return 0, "", fmt.Errorf("127.0.0.1:%d is no node's listener", port)
	}
	httpPorts := map[int]int{}
	c.http = func(id int, host string, port int) error {
		if host != "127.0.0.1" {
			return fmt.Errorf("node %d: MOLDAU_HTTP_LISTENER binds %s, want 127.0.0.1", id, host)
		}
		if rid, l, err := c.resolve(host, port); err == nil {
			return fmt.Errorf("node %d: MOLDAU_HTTP_LISTENER port %d is node %d's %s listener too", id, port, rid, l)
		}
		if other, ok := httpPorts[port]; ok && other != id {
			return fmt.Errorf("node %d: MOLDAU_HTTP_LISTENER port %d is node %d's too", id, port, other)
		}
		httpPorts[port] = id
		return nil
	}
	c.dataDir = func(id int, dir string) error {
		if want := fmt.Sprintf("%s/node-%d/data", baseDir, id); dir != want {
			return fmt.Errorf("node %d: KAFKA_LOG_DIRS=%s, want %s", id, dir, want)
		}
		return nil
	}
	return c
}

// normalized is every node's variables with each address replaced by the node and listener it
// reaches ("node2/CONTROLLER"), the bind addresses of KAFKA_LISTENERS by the listener names
// alone and the log dir by "<data>" once checked: what must be equal between two deployments.
func (c *cluster) normalized(t *testing.T) map[int]map[string]string {
	t.Helper()
	out := map[int]map[string]string{}
	for id, n := range c.nodes {
		m := maps.Clone(n.env)
		if ls, err := config.ParseListeners(m["KAFKA_LISTENERS"]); err != nil {
			t.Errorf("%s: node %d: KAFKA_LISTENERS: %v", c.what, id, err)
		} else {
			var names []string
			for _, l := range ls {
				names = append(names, l.Name)
			}
			m["KAFKA_LISTENERS"] = strings.Join(names, ",")
		}
		if ls, err := config.ParseListeners(m["KAFKA_ADVERTISED_LISTENERS"]); err != nil {
			t.Errorf("%s: node %d: KAFKA_ADVERTISED_LISTENERS: %v", c.what, id, err)
		} else {
			var to []string
			for _, l := range ls {
				rid, rl, err := c.resolve(l.Host, l.Port)
				switch {
				case err != nil:
					t.Errorf("%s: node %d: advertised %s: %v", c.what, id, l, err)
				case rid != id || rl != l.Name:
					t.Errorf("%s: node %d: advertised %s reaches node %d's %s listener, not its own %s", c.what, id, l, rid, rl, l.Name)
				}
				to = append(to, fmt.Sprintf("%s://node%d/%s", l.Name, rid, rl))
			}
			m["KAFKA_ADVERTISED_LISTENERS"] = strings.Join(to, ",")
		}
		var voters []string
		for _, v := range strings.Split(m["KAFKA_CONTROLLER_QUORUM_VOTERS"], ",") {
			vid, addr, ok := strings.Cut(v, "@")
			host, ps, ok2 := strings.Cut(addr, ":")
			p, err := strconv.Atoi(ps)
			if !ok || !ok2 || err != nil {
				t.Errorf("%s: node %d: voter %q is not ID@HOST:PORT", c.what, id, v)
				continue
			}
			rid, rl, err := c.resolve(host, p)
			if err != nil {
				t.Errorf("%s: node %d: voter %s: %v", c.what, id, v, err)
			} else if strconv.Itoa(rid) != vid || rl != "CONTROLLER" {
				t.Errorf("%s: node %d: voter %s reaches node %d's %s listener", c.what, id, v, rid, rl)
			}
			voters = append(voters, fmt.Sprintf("%s@node%d/%s", vid, rid, rl))
		}
		m["KAFKA_CONTROLLER_QUORUM_VOTERS"] = strings.Join(voters, ",")
		if err := c.dataDir(id, m["KAFKA_LOG_DIRS"]); err != nil {
			t.Errorf("%s: %v", c.what, err)
		}
		m["KAFKA_LOG_DIRS"] = "<data>"
		if v, ok := m["MOLDAU_HTTP_LISTENER"]; ok {
			host, ps, err := net.SplitHostPort(v)
			p, perr := strconv.Atoi(ps)
			switch {
			case err != nil || perr != nil:
				t.Errorf("%s: node %d: MOLDAU_HTTP_LISTENER=%s is not host:port", c.what, id, v)
			default:
				if err := c.http(id, host, p); err != nil {
					t.Errorf("%s: %v", c.what, err)
				}
			}
			m["MOLDAU_HTTP_LISTENER"] = "<http>"
		}
		out[id] = m
	}
	return out
}

// understood fails the test unless the server accepts every node's variables as they are, with
// no warning (a misspelt or unknown variable would be ignored with one).
func (c *cluster) understood(t *testing.T) {
	t.Helper()
	for _, id := range slices.Sorted(maps.Keys(c.nodes)) {
		var environ []string
		for k, v := range c.nodes[id].env {
			environ = append(environ, k+"="+v)
		}
		cfg, err := config.ParseServerArgs(nil, environ)
		if err != nil {
			t.Errorf("%s: node %d: the server refuses its settings: %v", c.what, id, err)
			continue
		}
		for _, w := range cfg.EnvWarnings {
			t.Errorf("%s: node %d: %s", c.what, id, w)
		}
		if int(cfg.NodeID) != id {
			t.Errorf("%s: node %d: the server reads node.id %d", c.what, id, cfg.NodeID)
		}
	}
}

func compare(t *testing.T, a, b *cluster) {
	t.Helper()
	na, nb := a.normalized(t), b.normalized(t)
	if len(na) != len(nb) {
		t.Fatalf("%s has %d nodes, %s %d", a.what, len(na), b.what, len(nb))
	}
	for id, ea := range na {
		eb, ok := nb[id]
		if !ok {
			t.Errorf("node %d is in %s, not in %s", id, a.what, b.what)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(ea)) {
			vb, ok := eb[k]
			switch {
			case !ok:
				t.Errorf("node %d: %s sets %s=%s, %s does not set it", id, a.what, k, ea[k], b.what)
			case vb != ea[k]:
				t.Errorf("node %d: %s: %s has %q, %s %q", id, k, a.what, ea[k], b.what, vb)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(eb)) {
			if _, ok := ea[k]; !ok {
				t.Errorf("node %d: %s sets %s=%s, %s does not set it", id, b.what, k, eb[k], a.what)
			}
		}
	}
}

// TestComposeMatchesClusterLocal is the drift check: each compose file against the script
// started with as many nodes.
func TestComposeMatchesClusterLocal(t *testing.T) {
	root := repoRoot(t)
	for _, tc := range []struct {
		file  string
		nodes int
	}{
		{"docker-compose.yml", 1},
		{"docker-compose.cluster.yml", 3},
	} {
		t.Run(tc.file, func(t *testing.T) {
			compose := loadCompose(t, filepath.Join(root, tc.file))
			script := loadScript(t, root, tc.nodes)
			compose.understood(t)
			script.understood(t)
			compare(t, compose, script)
		})
	}
}

// TestClusterLocalBrokerOnlyNodes: past the three voters the script's nodes are brokers only,
// with settings the server accepts, and every node names the same voters.
func TestClusterLocalBrokerOnlyNodes(t *testing.T) {
	c := loadScript(t, repoRoot(t), 5)
	c.understood(t)
	norm := c.normalized(t)
	for id, env := range norm {
		want := "broker,controller"
		if id > 3 {
			want = "broker"
		}
		if got := env["KAFKA_PROCESS_ROLES"]; got != want {
			t.Errorf("node %d: KAFKA_PROCESS_ROLES=%s, want %s", id, got, want)
		}
		if got, want := env["KAFKA_CONTROLLER_QUORUM_VOTERS"], "1@node1/CONTROLLER,2@node2/CONTROLLER,3@node3/CONTROLLER"; got != want {
			t.Errorf("node %d: voters %s, want %s", id, got, want)
		}
	}
}

// TestDockerfileVolume: the image's data volume is the log dir the compose files mount, and the
// image's own default log dir.
func TestDockerfileVolume(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	vol := regexp.MustCompile(`(?m)^VOLUME\s+(\S+)\s*$`).FindStringSubmatch(df)
	if vol == nil {
		t.Fatal("Dockerfile: no VOLUME line")
	}
	if !regexp.MustCompile(`KAFKA_LOG_DIRS=` + regexp.QuoteMeta(vol[1]) + `\b`).MatchString(df) {
		t.Errorf("Dockerfile: the image's KAFKA_LOG_DIRS is not its VOLUME %s", vol[1])
	}
	if !strings.Contains(df, "moldau tools") {
		t.Errorf("Dockerfile: the kafka-* links are not made from 'moldau tools'")
	}
	for _, f := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
		c := loadCompose(t, filepath.Join(root, f))
		for id, n := range c.nodes {
			if got := n.env["KAFKA_LOG_DIRS"]; got != vol[1] {
				t.Errorf("%s: node %d: KAFKA_LOG_DIRS=%s, the image's volume is %s", f, id, got, vol[1])
			}
		}
	}
}
