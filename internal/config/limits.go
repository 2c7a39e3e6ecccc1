package config

import (
	"fmt"
	"strconv"
	"strings"
)

// minusOneOrAtLeast accepts -1 (Kafka's "no limit") or a long of at least lo.
func minusOneOrAtLeast(lo int64) func(string) string {
	atLeast := longAtLeast(lo)
	return func(v string) string {
		if v == "-1" {
			return ""
		}
		if reason := atLeast(v); reason != "" {
			return "is out of range: must be -1 or at least " + strconv.FormatInt(lo, 10)
		}
		return ""
	}
}

func checkConnectionOverrides(v string) string {
	if _, err := ParseConnectionOverrides(v); err != nil {
		return "is not valid: " + err.Error()
	}
	return ""
}

// ParseConnectionOverrides parses max.connections.per.ip.overrides, Kafka's "host:count,host:count"
// (a host name or an IP address; for an IPv6 address the count follows the last colon). Empty: none.
func ParseConnectionOverrides(v string) (map[string]int32, error) {
	out := map[string]int32{}
	for _, entry := range splitList(v) {
		i := strings.LastIndexByte(entry, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%q is not host:count", entry)
		}
		host := strings.TrimSpace(entry[:i])
		n, err := strconv.ParseInt(strings.TrimSpace(entry[i+1:]), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: the count must be an integer of at least 0", entry)
		}
		out[host] = int32(n)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
