package verify

import (
	"os"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/faultproxy"
)

// TestClusterConfigsAndIsolation checks the properties files of a 3-node cluster with proxies,
// and which links Isolate cuts, without starting any process.
func TestClusterConfigsAndIsolation(t *testing.T) {
	c, err := NewCluster(ClusterConfig{Binary: "/nonexistent/moldau", Nodes: 3, Dir: t.TempDir(), Proxies: true,
		Properties: map[string]string{"min.insync.replicas": "2", "log.dirs": "/override/wins"},
		NodeProperties: func(id int32) map[string]string {
			return map[string]string{"broker.rack": "rack-" + string(rune('a'+id-1))}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n1, n2, n3 := c.Node(1), c.Node(2), c.Node(3)
	if c.Node(0) != nil || c.Node(4) != nil {
		t.Error("Node outside 1..3 is not nil")
	}
	b, err := os.ReadFile(n1.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{
		"node.id=1\n", "process.roles=broker,controller\n",
		"listeners=PLAINTEXT://" + n1.ClientAddr + ",CONTROLLER://" + n1.ControllerAddr + ",REPLICATION://" + n1.ReplicationAddr + "\n",
		"advertised.listeners=PLAINTEXT://" + n1.ClientAddr + ",REPLICATION://" + c.InterBrokerProxy(1).Addr() + "\n",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,REPLICATION:PLAINTEXT\n",
		"controller.listener.names=CONTROLLER\n", "inter.broker.listener.name=REPLICATION\n",
		// node 1 reaches itself directly and the others through its own proxies
		"controller.quorum.voters=1@" + n1.ControllerAddr + ",2@" + c.ControllerProxy(1, 2).Addr() + ",3@" + c.ControllerProxy(1, 3).Addr() + "\n",
		"log.dirs=/override/wins\n", "min.insync.replicas=2\n", "broker.rack=rack-a\n",
		"http.listener=" + n1.HTTPAddr + "\n", // its own port, never the default 8080
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("node 1's server.properties lacks %q:\n%s", want, cfg)
		}
	}
	if p := c.ControllerProxy(3, 2); p.Target() != n2.ControllerAddr {
		t.Errorf("proxy 3->2 forwards to %s, want %s", p.Target(), n2.ControllerAddr)
	}
	if p := c.InterBrokerProxy(3); p.Target() != n3.ReplicationAddr {
		t.Errorf("inter-broker proxy of 3 forwards to %s, want %s", p.Target(), n3.ReplicationAddr)
	}

	if err := c.Isolate(2); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		from, to int32
		want     faultproxy.Mode
	}{{1, 2, faultproxy.Cut}, {2, 1, faultproxy.Cut}, {3, 2, faultproxy.Cut}, {2, 3, faultproxy.Cut}, {1, 3, faultproxy.Forward}, {3, 1, faultproxy.Forward}} {
		if got := c.ControllerProxy(l.from, l.to).Mode(); got != l.want {
			t.Errorf("after Isolate(2) the link %d->%d is %v, want %v", l.from, l.to, got, l.want)
		}
	}
	if c.InterBrokerProxy(2).Mode() != faultproxy.Cut || c.InterBrokerProxy(1).Mode() != faultproxy.Forward {
		t.Errorf("inter-broker proxies after Isolate(2): node 2 %v, node 1 %v", c.InterBrokerProxy(2).Mode(), c.InterBrokerProxy(1).Mode())
	}
	if err := c.Heal(); err != nil {
		t.Fatal(err)
	}
	if c.ControllerProxy(2, 1).Mode() != faultproxy.Forward || c.InterBrokerProxy(2).Mode() != faultproxy.Forward {
		t.Error("Heal left a link cut")
	}

	// Without proxies, Isolate says why it cannot.
	plain, err := NewCluster(ClusterConfig{Binary: "/nonexistent/moldau", Nodes: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Isolate(1); err == nil {
		t.Error("Isolate without proxies succeeded")
	}
	if _, err := NewCluster(ClusterConfig{Binary: "x", Nodes: 0, Dir: t.TempDir()}); err == nil {
		t.Error("a 0-node cluster was accepted")
	}
}
