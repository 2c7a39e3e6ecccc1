package config

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinels wrapped by *Error, for mapping to Kafka error codes at the handler boundary.
var (
	ErrUnknownKey   = errors.New("unknown config key")
	ErrInvalidValue = errors.New("invalid config value")
	ErrReadOnly     = errors.New("config key is read-only")
)

// Error is a problem with one config key. errors.Is(err, ErrUnknownKey / ErrInvalidValue /
// ErrReadOnly) tells them apart.
type Error struct {
	Key    string
	Value  string
	Reason string // completes `KEY: "VALUE" ...`; for an unknown key, an optional suggestion
	Origin string // where the value was set (file path, environment variable, flag); may be ""
	Topic  bool   // the key is a topic key
	kind   error
}

func (e *Error) Error() string {
	var s string
	if e.kind == ErrUnknownKey {
		what := "key"
		if e.Topic {
			what = "topic config"
		}
		s = fmt.Sprintf("config: unknown %s %q%s", what, e.Key, e.Reason)
	} else {
		s = fmt.Sprintf("config: %s: %s %s", e.Key, strconv.Quote(e.Value), e.Reason)
	}
	if e.Origin != "" {
		s += " (from " + e.Origin + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.kind }

func unknownKeyError(key, origin string, topic bool) *Error {
	var names []string
	if topic {
		for _, k := range topicKeys {
			names = append(names, k.Name)
		}
	} else {
		for _, k := range brokerKeys {
			names = append(names, k.Name)
		}
	}
	reason := ""
	if s := suggest(key, names); s != "" {
		reason = fmt.Sprintf(" (did you mean %q?)", s)
	} else if !topic {
		if k, ok := topicIndex[key]; ok && k.BrokerKey != "" {
			reason = fmt.Sprintf(" (it is a topic config; the broker default is %q)", k.BrokerKey)
		}
	} else {
		for _, k := range topicKeys {
			if k.BrokerKey == key {
				reason = fmt.Sprintf(" (it is a broker config; the topic config is %q)", k.Name)
				break
			}
		}
	}
	return &Error{Key: key, Reason: reason, Origin: origin, Topic: topic, kind: ErrUnknownKey}
}

// suggest returns the name closest to key by edit distance, if it is close enough to be a typo.
func suggest(key string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(key) >= 16 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
