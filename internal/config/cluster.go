package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// The cluster keys: process.roles, the listeners and what each is for
// (controller.listener.names, listener.security.protocol.map, inter.broker.listener.name), and
// the metadata quorum (controller.quorum.voters, controller.quorum.bootstrap.servers). The
// checks follow Kafka's KafkaConfig.validateValues; where Moldau is more lenient it is because
// a single node started with no cluster keys at all must keep working: such a node (combined
// roles, no voters, no bootstrap servers) is one voter with an in-memory raft transport.

// Role names of process.roles.
const (
	RoleBroker     = "broker"
	RoleController = "controller"
)

// fillCluster fills the roles, listeners, quorum and inter-broker fields of b.c.
func (b *builder) fillCluster() {
	c := b.c
	c.ProcessRoles = parseRoles(b.get("process.roles"))
	c.IsBroker = slices.Contains(c.ProcessRoles, RoleBroker)
	c.IsController = slices.Contains(c.ProcessRoles, RoleController)
	roles := strings.Join(c.ProcessRoles, ",")

	// The effective listener.security.protocol.map: as in KRaft, when the key is not set, every
	// controller listener name not in the default map is PLAINTEXT.
	protocols, _ := parseProtocolMap(b.get("listener.security.protocol.map"))
	for _, n := range splitList(b.get("controller.listener.names")) {
		n = strings.ToUpper(n)
		if !slices.Contains(c.ControllerListenerNames, n) {
			c.ControllerListenerNames = append(c.ControllerListenerNames, n)
		}
	}
	isController := func(name string) bool { return slices.Contains(c.ControllerListenerNames, name) }
	if !b.isSet("listener.security.protocol.map") {
		for _, n := range c.ControllerListenerNames {
			if _, ok := protocols[n]; !ok {
				protocols[n] = "PLAINTEXT"
			}
		}
	}
	c.ListenerSecurityProtocols = protocols

	all, _ := ParseListeners(b.get("listeners"))
	var controllerListeners []Listener
	unsupported := false
	for _, l := range all {
		proto, ok := protocols[l.Name]
		if !ok {
			b.fail("listeners", fmt.Sprintf("has listener %s, which listener.security.protocol.map does not define: add %s:PLAINTEXT to listener.security.protocol.map", l.Name, l.Name))
			unsupported = true
			continue
		}
		if proto != "PLAINTEXT" {
			b.fail("listeners", fmt.Sprintf("is not supported yet: listener %s uses security protocol %s (listener.security.protocol.map), Moldau serves PLAINTEXT only", l.Name, proto))
			unsupported = true
			continue
		}
		l.SecurityProtocol = proto
		if isController(l.Name) {
			controllerListeners = append(controllerListeners, l)
			continue
		}
		c.Listeners = append(c.Listeners, l)
	}
	for _, n := range c.ControllerListenerNames {
		proto, ok := protocols[n]
		inListeners := slices.ContainsFunc(all, func(l Listener) bool { return l.Name == n })
		switch {
		case inListeners:
			// Reported with listeners if it is not mapped or not PLAINTEXT.
		case !ok:
			b.fail("controller.listener.names", fmt.Sprintf("names controller listener %s, which listener.security.protocol.map does not define (an explicit security mapping for each controller listener is required when listener.security.protocol.map is set): add %s:PLAINTEXT to it", n, n))
		case proto != "PLAINTEXT":
			b.fail("controller.listener.names", fmt.Sprintf("is not supported yet: controller listener %s uses security protocol %s (listener.security.protocol.map), Moldau serves PLAINTEXT only", n, proto))
		}
	}

	switch {
	case c.IsBroker && c.IsController:
		if len(c.Listeners) == 0 && len(all) > 0 && !unsupported {
			b.fail("listeners", "has no client listener: every listener is named in controller.listener.names (there must be at least one broker listener)")
		}
	case c.IsBroker:
		if len(c.ControllerListenerNames) == 0 {
			b.fail("controller.listener.names", "must contain at least one value when process.roles=broker: the name of the listener the controllers are reached on (e.g. CONTROLLER)")
		}
		if len(controllerListeners) > 0 {
			b.fail("listeners", fmt.Sprintf("must not contain a controller listener when process.roles=broker: %s is named in controller.listener.names", controllerListeners[0].Name))
		}
		if len(c.Listeners) == 0 && len(all) > 0 && !unsupported {
			b.fail("listeners", "has no broker listener (there must be at least one)")
		}
	case c.IsController:
		for _, l := range c.Listeners {
			b.fail("listeners", fmt.Sprintf("must only contain controller listeners from controller.listener.names when process.roles=controller: %s is not one", l.Name))
		}
		c.Listeners = nil
		if len(c.ControllerListenerNames) == 0 {
			b.fail("controller.listener.names", "must contain at least one value appearing in listeners when process.roles=controller")
		}
	}
	if c.IsController {
		for _, n := range c.ControllerListenerNames {
			if !slices.ContainsFunc(controllerListeners, func(l Listener) bool { return l.Name == n }) && protocols[n] == "PLAINTEXT" {
				b.fail("controller.listener.names", fmt.Sprintf("must only contain values appearing in listeners when process.roles contains controller: %s is not a listener", n))
			}
		}
	}

	// Advertised listeners: one per client listener; entries for controller listeners are this
	// node's advertised controller endpoint (Kafka 4's server.properties has one).
	advertised := map[string]Listener{}
	var advertisedController *Listener
	if b.isSet("advertised.listeners") {
		adv, _ := ParseListeners(b.get("advertised.listeners"))
		for _, a := range adv {
			isClient := slices.ContainsFunc(c.Listeners, func(l Listener) bool { return l.Name == a.Name })
			if isController(a.Name) {
				// A broker-only node's entry is not used (as in Kafka, which filters it out).
				switch {
				case !c.IsController:
				case a.Host == "0.0.0.0" || a.Host == "::":
					b.fail("advertised.listeners", fmt.Sprintf("advertises %s, a wildcard address other nodes cannot connect to: use a host name or IP", a))
				case advertisedController == nil && a.Name == c.ControllerListenerNames[0]:
					a := a
					advertisedController = &a
				}
				continue
			}
			switch {
			case !isClient:
				valid := make([]string, 0, len(all))
				for _, l := range all {
					valid = append(valid, l.Name)
				}
				b.fail("advertised.listeners", fmt.Sprintf("names listener %s, which is not a %slistener in listeners (the valid options are %s)", a.Name, map[bool]string{true: "client ", false: ""}[c.IsBroker], strings.Join(valid, ",")))
			case a.Host == "0.0.0.0" || a.Host == "::":
				b.fail("advertised.listeners", fmt.Sprintf("advertises %s, a wildcard address clients cannot connect to: use a host name or IP", a))
			}
			advertised[a.Name] = a
		}
	}
	var advText []string
	for _, l := range c.Listeners {
		a, ok := advertised[l.Name]
		if !ok {
			a = l // Kafka: a listener without an advertised entry is advertised as bound
		}
		if wildcardHost(a.Host) {
			a.Host = b.localHostName()
		}
		a.SecurityProtocol = l.SecurityProtocol
		c.AdvertisedListeners = append(c.AdvertisedListeners, a)
		advText = append(advText, a.String())
	}
	if advertisedController != nil {
		advText = append(advText, advertisedController.String())
	}
	from := "listeners"
	if b.isSet("advertised.listeners") {
		from = "advertised.listeners"
	}
	b.derive("advertised.listeners", strings.Join(advText, ","), from)

	b.fillQuorum(roles, controllerListeners, advertisedController)
	b.fillInterBroker()
	httpKey := b.fillHTTPListener()

	// Two things bound to the same non-zero port cannot both start.
	ports := map[int]string{}
	claim := func(addr, what string) {
		_, port, err := splitHostPort(addr)
		if err != nil || port == 0 {
			return
		}
		if prev, ok := ports[port]; ok {
			b.fail(what, fmt.Sprintf("uses port %d, already used by %s", port, prev))
			return
		}
		ports[port] = what
	}
	for _, l := range c.Listeners {
		claim(l.Addr(), "listeners")
	}
	if c.ControllerListener != "" {
		claim(c.ControllerListener, "controller.listener")
	}
	if c.HTTPListener != "" {
		claim(c.HTTPListener, httpKey)
	}
}

// fillHTTPListener sets HTTPListener from http.listener or its alias metrics.listener and
// returns the key it came from, for error messages. The alias set alone wins over http.listener's
// default; both set, the one of higher precedence wins (a flag over the environment over the
// file), and at the same precedence they must agree.
func (b *builder) fillHTTPListener() string {
	c := b.c
	httpL, metricsL := b.get("http.listener"), b.get("metrics.listener")
	bothSet := b.isSet("metrics.listener") && b.isSet("http.listener")
	switch {
	case bothSet && b.set["metrics.listener"].source == b.set["http.listener"].source:
		c.HTTPListener = httpL
		if metricsL != httpL {
			b.fail("metrics.listener", fmt.Sprintf("differs from http.listener (%q): metrics.listener is an alias of http.listener, set only one of them", httpL))
		}
		return "http.listener"
	case bothSet && b.set["http.listener"].source > b.set["metrics.listener"].source:
		c.HTTPListener = httpL
		b.derive("metrics.listener", httpL, "http.listener")
		return "http.listener"
	case b.isSet("metrics.listener"):
		c.HTTPListener = metricsL
		b.derive("http.listener", metricsL, "metrics.listener")
		return "metrics.listener"
	}
	c.HTTPListener = httpL
	b.derive("metrics.listener", httpL, "http.listener")
	return "http.listener"
}

// fillQuorum fills ControllerQuorumVoters, ControllerQuorumBootstrapServers, ControllerListener
// and ControllerAdvertisedListener.
func (b *builder) fillQuorum(roles string, controllerListeners []Listener, advertisedController *Listener) {
	c := b.c
	c.ControllerQuorumVoters, _ = ParseVoters(b.get("controller.quorum.voters"))
	c.ControllerQuorumBootstrapServers, _ = parseHostPorts(b.get("controller.quorum.bootstrap.servers"))
	ids := make([]string, len(c.ControllerQuorumVoters))
	var self *Voter
	for i, v := range c.ControllerQuorumVoters {
		ids[i] = strconv.Itoa(int(v.ID))
		if v.ID == c.NodeID {
			self = &c.ControllerQuorumVoters[i]
		}
	}
	quorumGiven := len(c.ControllerQuorumVoters) > 0 || len(c.ControllerQuorumBootstrapServers) > 0
	if !quorumGiven && !(c.IsBroker && c.IsController) {
		b.fail("process.roles", fmt.Sprintf("needs the metadata quorum when it is %s: either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers", roles))
	}
	if c.IsController && len(c.ControllerQuorumVoters) > 0 && self == nil {
		b.fail("controller.quorum.voters", fmt.Sprintf("does not list this node: process.roles contains the 'controller' role, so node.id %d must be among voters %s", c.NodeID, strings.Join(ids, ", ")))
	}
	if !c.IsController && self != nil {
		b.fail("controller.quorum.voters", fmt.Sprintf("lists this node: process.roles=broker, so node.id %d must not be among voters %s (a broker-only node is not a voter)", c.NodeID, strings.Join(ids, ", ")))
	}

	// The raft bind address.
	switch {
	case !c.IsController:
		if b.isSet("controller.listener") {
			b.fail("controller.listener", "is set but process.roles=broker: only a controller runs the raft transport")
		}
	case b.isSet("controller.listener"):
		c.ControllerListener = b.get("controller.listener")
	case len(controllerListeners) > 0:
		c.ControllerListener = controllerListeners[0].Addr()
		b.derive("controller.listener", c.ControllerListener, "listeners")
	case self != nil:
		c.ControllerListener = self.Addr()
		b.derive("controller.listener", c.ControllerListener, "controller.quorum.voters")
	}

	// The address other nodes dial to reach this controller.
	if c.IsController {
		switch {
		case self != nil:
			c.ControllerAdvertisedListener = self.Addr()
		case advertisedController != nil:
			c.ControllerAdvertisedListener = advertisedController.Addr()
		case c.ControllerListener != "":
			host, port, _ := splitHostPort(c.ControllerListener)
			if wildcardHost(host) {
				host = b.localHostName()
			}
			c.ControllerAdvertisedListener = net.JoinHostPort(host, strconv.Itoa(port))
		}
	}

	// controller.quorum.bootstrap.servers without voters (Kafka 3.9+'s dynamic quorum, as in
	// Kafka 4's shipped server.properties). Moldau's quorum is a static voter set, so it needs
	// the voters' node ids: a controller whose only bootstrap server is its own controller
	// endpoint is a single-voter quorum (kafka-storage format --standalone); more controllers
	// need controller.quorum.voters. A broker-only node just dials the bootstrap servers.
	if len(c.ControllerQuorumVoters) == 0 && len(c.ControllerQuorumBootstrapServers) > 0 && c.IsController {
		bs := c.ControllerQuorumBootstrapServers
		if len(bs) == 1 && b.isOwnControllerEndpoint(bs[0], advertisedController) {
			host, port, _ := splitHostPort(bs[0])
			c.ControllerQuorumVoters = []Voter{{ID: c.NodeID, Host: host, Port: port}}
			c.ControllerAdvertisedListener = bs[0]
		} else {
			b.fail("controller.quorum.bootstrap.servers", fmt.Sprintf("lists controllers whose node ids Moldau cannot know: Moldau runs a static voter set (dynamic quorums, KIP-853, are not supported yet), so list the voters in controller.quorum.voters=id@host:port,... on every node; bootstrap servers alone are accepted for a single controller that names its own controller endpoint (%s)", orNone(c.ControllerAdvertisedListener)))
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// isOwnControllerEndpoint reports whether host:port addr reaches this node's controller
// listener: it is the advertised controller endpoint, the bind address itself, or the bind
// port on a loopback name or this machine's name when the listener binds all interfaces.
func (b *builder) isOwnControllerEndpoint(addr string, advertised *Listener) bool {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return false
	}
	if advertised != nil && strings.EqualFold(advertised.Host, host) && advertised.Port == port {
		return true
	}
	if b.c.ControllerListener == "" {
		return false
	}
	bhost, bport, err := splitHostPort(b.c.ControllerListener)
	if err != nil || bport != port {
		return false
	}
	if strings.EqualFold(bhost, host) {
		return true
	}
	if !wildcardHost(bhost) {
		return false
	}
	switch strings.ToLower(host) {
	case "localhost", "127.0.0.1", "::1", strings.ToLower(b.localHostName()):
		return true
	}
	return false
}

// fillInterBroker fills InterBrokerListener and InterBrokerEndpoint: inter.broker.listener.name,
// else the listener named after security.inter.broker.protocol (PLAINTEXT), as in Kafka. A
// node alone (no other voters, no bootstrap servers) with no such listener uses its first
// listener, since nothing connects to it as a broker.
func (b *builder) fillInterBroker() {
	c := b.c
	if !c.IsBroker {
		return
	}
	name := strings.ToUpper(b.get("security.inter.broker.protocol"))
	explicit := false
	switch {
	case b.isSet("inter.broker.listener.name") && b.isSet("security.inter.broker.protocol"):
		b.fail("inter.broker.listener.name", "cannot be set together with security.inter.broker.protocol: only one of them should be set")
		return
	case b.isSet("inter.broker.listener.name"):
		name = strings.ToUpper(b.get("inter.broker.listener.name"))
		explicit = true
		if _, ok := c.ListenerSecurityProtocols[name]; !ok {
			b.fail("inter.broker.listener.name", fmt.Sprintf("names listener %s, which listener.security.protocol.map does not define", name))
			return
		}
	case b.isSet("security.inter.broker.protocol"):
		explicit = true
	}
	for _, a := range c.AdvertisedListeners {
		if a.Name == name {
			c.InterBrokerListener, c.InterBrokerEndpoint = a.Name, a
			b.derive("inter.broker.listener.name", a.Name, "inter.broker.listener.name")
			return
		}
	}
	if len(c.AdvertisedListeners) == 0 {
		return // the listeners already failed
	}
	if !explicit && c.Standalone() {
		a := c.AdvertisedListeners[0]
		c.InterBrokerListener, c.InterBrokerEndpoint = a.Name, a
		b.derive("inter.broker.listener.name", a.Name, "listeners")
		return
	}
	var valid []string
	for _, a := range c.AdvertisedListeners {
		valid = append(valid, a.Name)
	}
	key := "inter.broker.listener.name"
	if !b.isSet(key) {
		if b.isSet("security.inter.broker.protocol") {
			key = "security.inter.broker.protocol"
		} else {
			b.errs = append(b.errs, &Error{Key: key, Value: name, Reason: fmt.Sprintf("(the default, from security.inter.broker.protocol) must be a listener name defined in advertised.listeners: the valid options based on the configured listeners are %s; set inter.broker.listener.name", strings.Join(valid, ",")), kind: ErrInvalidValue})
			return
		}
	}
	b.fail(key, fmt.Sprintf("must be a listener name defined in advertised.listeners: the valid options based on the configured listeners are %s", strings.Join(valid, ",")))
}

// Standalone reports whether this node forms a cluster of its own: it is a controller and the
// quorum has no other voter (none configured, or only this node) and no bootstrap server but
// its own. Such a node creates its internal topics with replication factor 1 unless
// offsets.topic.replication.factor / transaction.state.log.replication.factor are set.
func (c *Config) Standalone() bool {
	if !c.IsController {
		return false
	}
	for _, v := range c.ControllerQuorumVoters {
		if v.ID != c.NodeID {
			return false
		}
	}
	if len(c.ControllerQuorumVoters) == 0 && len(c.ControllerQuorumBootstrapServers) > 0 {
		return false
	}
	return true
}

// parseRoles splits process.roles into its roles in canonical order (broker before controller).
func parseRoles(v string) []string {
	var out []string
	for _, r := range []string{RoleBroker, RoleController} {
		if slices.Contains(splitList(v), r) {
			out = append(out, r)
		}
	}
	return out
}

func checkProcessRoles(v string) string {
	seen := map[string]bool{}
	for _, r := range splitList(v) {
		if r != RoleBroker && r != RoleController {
			return "is not valid: " + strconv.Quote(r) + " is not a role (expected broker, controller or broker,controller)"
		}
		if seen[r] {
			return "is not valid: duplicate role names found (" + strconv.Quote(r) + ")"
		}
		seen[r] = true
	}
	if len(seen) == 0 {
		return "is not valid: expected broker, controller or broker,controller"
	}
	return ""
}

// parseHostPorts parses a comma-separated list of host:port with a host and a non-zero port.
func parseHostPorts(v string) ([]string, error) {
	var out []string
	for _, item := range splitList(v) {
		host, port, err := splitHostPort(item)
		if err != nil {
			return nil, err
		}
		if host == "" || port == 0 {
			return nil, fmt.Errorf("%q: a controller needs a host and a non-zero port", item)
		}
		out = append(out, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	return out, nil
}

func checkHostPorts(v string) string {
	if _, err := parseHostPorts(v); err != nil {
		return "is not valid: " + err.Error() + " (expected host:port,...)"
	}
	return ""
}

func checkSecurityProtocol(v string) string {
	switch strings.ToUpper(v) {
	case "PLAINTEXT":
		return ""
	case "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		return "is not supported yet: Moldau serves PLAINTEXT only"
	}
	return "is not valid: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
}

func checkListenerName(v string) string {
	if _, err := ParseListeners(v + "://:0"); err != nil || strings.Contains(v, ",") {
		return "is not valid: expected one listener name (letters, digits, '_' and '-')"
	}
	return ""
}
