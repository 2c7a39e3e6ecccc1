package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moldau/moldau/internal/verify"
)

func TestNodeProperties(t *testing.T) {
	nodes := []*clusterNode{
		{id: 1, clientAddr: "127.0.0.1:1001", ctrlAddr: "127.0.0.1:2001", dir: "/d/node-1"},
		{id: 2, clientAddr: "127.0.0.1:1002", ctrlAddr: "127.0.0.1:2002", dir: "/d/node-2"},
		{id: 3, clientAddr: "127.0.0.1:1003", ctrlAddr: "127.0.0.1:2003", dir: "/d/node-3"},
	}
	got := nodeProperties(nodes, nodes[1], map[string]string{"log.flush.interval.messages": kafkaNoFlush, "node.id": "2"},
		[]string{"broker.session.timeout.ms=2000", "log.dirs = /elsewhere"})
	for _, want := range []string{
		"node.id=2\n",
		"process.roles=broker,controller\n",
		"controller.quorum.voters=1@127.0.0.1:2001,2@127.0.0.1:2002,3@127.0.0.1:2003\n",
		"listeners=PLAINTEXT://127.0.0.1:1002,CONTROLLER://127.0.0.1:2002\n",
		"advertised.listeners=PLAINTEXT://127.0.0.1:1002\n",
		"controller.listener.names=CONTROLLER\n",
		"inter.broker.listener.name=PLAINTEXT\n",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n",
		"log.dirs=/elsewhere\n",
		"broker.session.timeout.ms=2000\n",
		"log.flush.interval.messages=" + kafkaNoFlush + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("properties lack %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "node.id=") != 1 {
		t.Errorf("node.id appears more than once:\n%s", got)
	}
}

func TestStallKey(t *testing.T) {
	id := verify.ID{Producer: 1, Seq: 123456}
	got, ok := parseStallKey(stallKey(id))
	if !ok || got != id {
		t.Fatalf("parseStallKey(stallKey(%v)) = %v, %v", id, got, ok)
	}
	for _, k := range []string{"", "stall/1", "mv1/x/p1/1", "stall/a/1", "stall/1/b"} {
		if _, ok := parseStallKey([]byte(k)); ok {
			t.Errorf("parseStallKey(%q) accepted", k)
		}
	}
}

func TestClusterTargets(t *testing.T) {
	w1 := func(mbps, cpu float64) *benchResult {
		return &benchResult{Records: 1 << 20, Bytes: gib, MBPerSec: mbps, BrokerCPUSec: cpu}
	}
	stall := func(ms int64, recovered bool, lost int64) *stallResult {
		return &stallResult{KilledNode: 1, Partition0StallMs: ms, Partition0Recovered: recovered,
			Verify: verify.Report{Acknowledged: 1000, Lost: lost}}
	}
	for _, tc := range []struct {
		name              string
		m, k              *systemResult
		want              []string // statuses of the first four targets
		cellM, cellK, rat string   // the W1 MB/s row
	}{
		{
			name:  "met",
			m:     &systemResult{System: "moldau3", Workloads: map[string]*benchResult{"W1": w1(300, 3)}, Stall: stall(1500, true, 0)},
			k:     &systemResult{System: "kafka3", Workloads: map[string]*benchResult{"W1": w1(100, 10)}, Stall: stall(12000, true, 0)},
			want:  []string{"met", "met", "met", "met"},
			cellM: "300.0", cellK: "100.0", rat: "3.00x",
		},
		{
			name:  "missed",
			m:     &systemResult{System: "moldau3", Workloads: map[string]*benchResult{"W1": w1(140, 5)}, Stall: stall(9000, true, 1)},
			k:     &systemResult{System: "kafka3", Workloads: map[string]*benchResult{"W1": w1(100, 10)}, Stall: stall(12000, true, 0)},
			want:  []string{"missed", "missed", "missed", "missed"},
			cellM: "140.0", cellK: "100.0", rat: "1.40x",
		},
		{
			name:  "not recovered is missed even when short",
			m:     &systemResult{System: "moldau3", Workloads: map[string]*benchResult{"W1": w1(300, 3)}, Stall: stall(1000, false, 0)},
			k:     &systemResult{System: "kafka3", Workloads: map[string]*benchResult{}},
			want:  []string{"n/a", "n/a", "missed", "met"},
			cellM: "300.0", cellK: "–", rat: "–",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{Clusters: []*systemResult{tc.m, tc.k}}
			r.evaluateClusters()
			if len(r.ClusterTargets) < 4 {
				t.Fatalf("targets: %+v", r.ClusterTargets)
			}
			for i, want := range tc.want {
				if got := r.ClusterTargets[i].Status; got != want {
					t.Errorf("target %q: status %s, want %s (%s)", r.ClusterTargets[i].Name, got, want, r.ClusterTargets[i].Measured)
				}
			}
			var b strings.Builder
			r.clusterTable(&b)
			want := "| W1 produce 1 KiB, RF=3, acks=all, MB/s | " + tc.cellM + " | " + tc.cellK + " | " + tc.rat + " |\n"
			if !strings.Contains(b.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, b.String())
			}
		})
	}
}

func TestStallAssignment(t *testing.T) {
	got := stallAssignment(6, 3, 2)
	want := [][]int32{{2, 3, 1}, {3, 1, 2}, {1, 2, 3}, {2, 3, 1}, {3, 1, 2}, {1, 2, 3}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stallAssignment(6, 3, 2) = %v, want %v", got, want)
	}
}
