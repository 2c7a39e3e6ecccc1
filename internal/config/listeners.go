package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Listener is one NAME://host:port entry of listeners or advertised.listeners.
type Listener struct {
	Name             string // upper case, e.g. PLAINTEXT
	SecurityProtocol string // from listener.security.protocol.map; always PLAINTEXT in a valid Config
	Host             string // "" or 0.0.0.0 / :: (listeners only): all interfaces
	Port             int    // 0 in listeners: any free port (the server reports the bound one)
}

// Addr is host:port, suitable for net.Listen or for a client to dial.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

func (l Listener) String() string { return l.Name + "://" + l.Addr() }

// wildcardHost reports whether h means "all interfaces".
func wildcardHost(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

// ParseListeners parses a comma-separated list of NAME://host:port. Names are upper-cased and must
// be unique; IPv6 hosts are written in brackets ([::1]:9092).
func ParseListeners(s string) ([]Listener, error) {
	var out []Listener
	seen := map[string]bool{}
	for _, item := range splitList(s) {
		name, addr, ok := strings.Cut(item, "://")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not NAME://host:port", item)
		}
		name = strings.ToUpper(name)
		for _, r := range name {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return nil, fmt.Errorf("%q: listener name %q may only hold letters, digits, '_' and '-'", item, name)
			}
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("listener name %s is used twice", name)
		}
		seen[name] = true
		out = append(out, Listener{Name: name, SecurityProtocol: "PLAINTEXT", Host: host, Port: port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listener (expected NAME://host:port,...)")
	}
	return out, nil
}

// splitHostPort splits host:port with a port in 0..65535. The host may be empty.
func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(strings.TrimSpace(addr))
	if err != nil {
		return "", 0, fmt.Errorf("%q: %v", addr, strings.TrimPrefix(err.Error(), "address "+addr+": "))
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number between 0 and 65535", addr, ps)
	}
	return host, port, nil
}

// Voter is one id@host:port entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr is host:port of the voter's raft transport.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

func (v Voter) String() string { return strconv.Itoa(int(v.ID)) + "@" + v.Addr() }

// ParseVoters parses controller.quorum.voters: id@host:port,... An empty string is no voters.
func ParseVoters(s string) ([]Voter, error) {
	var out []Voter
	seen := map[int32]bool{}
	for _, item := range splitList(s) {
		ids, addr, ok := strings.Cut(item, "@")
		if !ok {
			return nil, fmt.Errorf("%q is not id@host:port", item)
		}
		id, err := strconv.ParseInt(ids, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q: node id %q is not a non-negative integer", item, ids)
		}
		host, port, err := splitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", item, err)
		}
		if host == "" || port == 0 {
			return nil, fmt.Errorf("%q: a voter needs a host and a non-zero port", item)
		}
		if seen[int32(id)] {
			return nil, fmt.Errorf("node id %d is listed twice", id)
		}
		seen[int32(id)] = true
		out = append(out, Voter{ID: int32(id), Host: host, Port: port})
	}
	return out, nil
}

// parseProtocolMap parses listener.security.protocol.map: NAME:PROTOCOL,...
func parseProtocolMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, item := range splitList(s) {
		name, proto, ok := strings.Cut(item, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" || proto == "" {
			return nil, fmt.Errorf("%q is not NAME:PROTOCOL", item)
		}
		switch proto {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return nil, fmt.Errorf("%q: unknown security protocol %s (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", item, proto)
		}
		m[name] = proto
	}
	return m, nil
}
