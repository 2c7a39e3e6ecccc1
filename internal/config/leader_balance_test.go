package config

import (
	"errors"
	"testing"
)

// TestLeaderBalanceKeys: Kafka's auto leader rebalance keys with Kafka's defaults and ranges;
// read-only at runtime, as in Kafka; no longer reported as ignored.
func TestLeaderBalanceKeys(t *testing.T) {
	c, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if !c.AutoLeaderRebalanceEnable || c.LeaderImbalancePerBrokerPercentage != 10 || c.LeaderImbalanceCheckIntervalSeconds != 300 {
		t.Fatalf("defaults: %v %d %d", c.AutoLeaderRebalanceEnable, c.LeaderImbalancePerBrokerPercentage, c.LeaderImbalanceCheckIntervalSeconds)
	}
	c, err = Build(map[string]string{"auto.leader.rebalance.enable": "false",
		"leader.imbalance.per.broker.percentage": "0", "leader.imbalance.check.interval.seconds": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoLeaderRebalanceEnable || c.LeaderImbalancePerBrokerPercentage != 0 || c.LeaderImbalanceCheckIntervalSeconds != 1 {
		t.Fatalf("set: %v %d %d", c.AutoLeaderRebalanceEnable, c.LeaderImbalancePerBrokerPercentage, c.LeaderImbalanceCheckIntervalSeconds)
	}
	for _, k := range []string{"auto.leader.rebalance.enable", "leader.imbalance.per.broker.percentage", "leader.imbalance.check.interval.seconds"} {
		for _, ig := range c.Ignored {
			if ig == k {
				t.Errorf("%s reported as ignored", k)
			}
		}
		if err := ValidateBrokerConfig(k, "1"); !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s at runtime: %v, want read-only", k, err)
		}
	}
	for k, v := range map[string]string{
		"auto.leader.rebalance.enable":            "maybe",
		"leader.imbalance.per.broker.percentage":  "-1",
		"leader.imbalance.check.interval.seconds": "0",
	} {
		if _, err := Build(map[string]string{k: v}); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s=%s: %v, want invalid", k, v, err)
		}
	}
}
