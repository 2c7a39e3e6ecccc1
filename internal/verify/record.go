package verify

import (
	"fmt"
	"strconv"
	"strings"
)

// ID names one record of a verify run: the producer that sent it and its sequence number in that
// producer's stream. Sequence numbers start at 0 and have no gaps: producer p attempted exactly the
// records 0..Sent[p]-1.
type ID struct {
	Producer int
	Seq      int64
}

func (id ID) String() string { return fmt.Sprintf("p%d/%d", id.Producer, id.Seq) }

// keyPrefix starts every key moldau verify writes; with the run id it tells this run's records from
// any other's in the same topic.
const keyPrefix = "mv1"

// encodeKey is "mv1/<run>/p<producer>/<seq>": readable in kafka-console-consumer output, and
// unique across runs that share a topic.
func encodeKey(run string, id ID) []byte {
	return fmt.Appendf(nil, "%s/%s/p%d/%012d", keyPrefix, run, id.Producer, id.Seq)
}

// encodeValue repeats the key (so a record whose key and value disagree is detected) and pads it
// to size bytes with a deterministic filler.
func encodeValue(run string, id ID, size int) []byte {
	v := encodeKey(run, id)
	v = append(v, ' ')
	for len(v) < size {
		v = append(v, byte('a'+len(v)%26))
	}
	return v
}

// decodeKey parses a key written by encodeKey. ok is false for a key of another run or not
// written by moldau verify at all.
func decodeKey(run string, key []byte) (ID, bool) {
	parts := strings.Split(string(key), "/")
	if len(parts) != 4 || parts[0] != keyPrefix || parts[1] != run || !strings.HasPrefix(parts[2], "p") {
		return ID{}, false
	}
	p, err := strconv.Atoi(parts[2][1:])
	if err != nil || p < 0 {
		return ID{}, false
	}
	seq, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || seq < 0 {
		return ID{}, false
	}
	return ID{Producer: p, Seq: seq}, true
}

// valueMatches reports whether value is what encodeValue wrote for key (its prefix up to the space).
func valueMatches(key, value []byte) bool {
	head, _, _ := strings.Cut(string(value), " ")
	return head == string(key)
}
