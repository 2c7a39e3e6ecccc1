package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseThrottledReplicas(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ThrottledReplicas
	}{
		{"", ThrottledReplicas{}},
		{"  ", ThrottledReplicas{}},
		{"*", ThrottledReplicas{All: true}},
		{" * ", ThrottledReplicas{All: true}},
		{"0:1", ThrottledReplicas{Entries: []ThrottledReplica{{0, 1}}}},
		{"0:1, 1:2 ,2 : 3", ThrottledReplicas{Entries: []ThrottledReplica{{0, 1}, {1, 2}, {2, 3}}}},
	} {
		got, err := ParseThrottledReplicas(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseThrottledReplicas(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"0", "0-1", "a:1", "0:b", "0:1,", ",0:1", "0:1:2", "-1:1", "*,0:1", "0:99999999999"} {
		if _, err := ParseThrottledReplicas(in); err == nil {
			t.Errorf("ParseThrottledReplicas(%q) accepted", in)
		}
		err := ValidateTopicConfig(LeaderReplicationThrottledReplicas, in)
		if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), "[partitionId]:[brokerId]") {
			t.Errorf("ValidateTopicConfig(leader.replication.throttled.replicas, %q) = %v", in, err)
		}
	}
	tr, _ := ParseThrottledReplicas("0:1,1:2,2:1")
	if parts, all := tr.Partitions(1); all || !reflect.DeepEqual(parts, []int32{0, 2}) {
		t.Errorf("Partitions(1) = %v, %v", parts, all)
	}
	if parts, all := tr.Partitions(3); all || parts != nil {
		t.Errorf("Partitions(3) = %v, %v", parts, all)
	}
	if _, all := (ThrottledReplicas{All: true}).Partitions(3); !all {
		t.Error("* does not throttle every partition")
	}
}

func TestReplicationQuotaKeys(t *testing.T) {
	c, err := Build(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.LeaderReplicationThrottledRate != maxLong || c.FollowerReplicationThrottledRate != maxLong ||
		c.ReplicationQuotaWindowNum != 11 || c.ReplicationQuotaWindowSizeSeconds != 1 {
		t.Fatalf("defaults: %d %d %d %d", c.LeaderReplicationThrottledRate, c.FollowerReplicationThrottledRate,
			c.ReplicationQuotaWindowNum, c.ReplicationQuotaWindowSizeSeconds)
	}
	for _, k := range []string{LeaderReplicationThrottledRate, FollowerReplicationThrottledRate} {
		if err := ValidateBrokerConfig(k, "1048576"); err != nil {
			t.Errorf("%s=1048576: %v", k, err)
		}
		if err := ValidateBrokerConfig(k, "-1"); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s=-1: %v", k, err)
		}
	}
	if err := ValidateBrokerConfig("replication.quota.window.num", "5"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("replication.quota.window.num is dynamic: %v", err)
	}
	// Per-broker dynamic values win over the cluster default, which wins over static ones.
	c, err = Build(map[string]string{LeaderReplicationThrottledRate: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.WithDynamicBroker(map[string]string{LeaderReplicationThrottledRate: "2000", FollowerReplicationThrottledRate: "5"},
		map[string]string{LeaderReplicationThrottledRate: "3000"})
	if err != nil {
		t.Fatal(err)
	}
	if d.LeaderReplicationThrottledRate != 3000 || d.FollowerReplicationThrottledRate != 5 {
		t.Fatalf("leader %d follower %d", d.LeaderReplicationThrottledRate, d.FollowerReplicationThrottledRate)
	}
	if _, src, _ := d.Lookup(LeaderReplicationThrottledRate); src != SourceDynamicBroker || src.KafkaConfigSource() != 2 {
		t.Errorf("leader rate source %v", src)
	}
	if _, src, _ := d.Lookup(FollowerReplicationThrottledRate); src != SourceDynamic || src.KafkaConfigSource() != 3 {
		t.Errorf("follower rate source %v", src)
	}
	if _, err := c.WithDynamicBroker(nil, map[string]string{"log.dirs": "/x"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("a static key as a per-broker dynamic config: %v", err)
	}
}
