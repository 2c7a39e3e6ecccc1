package cli

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
)

const clusterUsage = `Usage: moldau cluster info [options]
       moldau cluster elect-leaders [--unclean] [TOPIC[:PARTITION] ...] [options]
       moldau cluster rebalance [options]

info prints the cluster id, the controller, the brokers and the number of topics; elect-leaders
moves leadership back to the preferred replicas (moldau cluster elect-leaders --help); rebalance
evens out replica and leader counts (moldau cluster rebalance --help).`

// clusterInfo is what moldau cluster info prints.
type clusterInfo struct {
	ClusterID  string
	Controller int32
	Brokers    []kadm.BrokerDetail
	Topics     int
}

func writeClusterInfo(w io.Writer, ci clusterInfo) {
	id := ci.ClusterID
	if id == "" {
		id = "(none)"
	}
	fmt.Fprintf(w, "Cluster ID: %s\n", id)
	ctrl := "none"
	for _, b := range ci.Brokers {
		if b.NodeID == ci.Controller {
			ctrl = fmt.Sprintf("%d (%s)", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		}
	}
	if ctrl == "none" && ci.Controller >= 0 {
		ctrl = strconv.Itoa(int(ci.Controller))
	}
	fmt.Fprintf(w, "Controller: %s\n", ctrl)
	fmt.Fprintf(w, "Brokers: %d\n", len(ci.Brokers))
	for _, b := range ci.Brokers {
		rack := ""
		if b.Rack != nil && *b.Rack != "" {
			rack = "\track=" + *b.Rack
		}
		fmt.Fprintf(w, "  %d\t%s%s\n", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack)
	}
	fmt.Fprintf(w, "Topics: %d\n", ci.Topics)
}

func runCluster(e *env, args []string) error {
	if len(args) == 0 {
		return e.usagef("missing subcommand: moldau cluster info")
	}
	if args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stdout, newFlagSet("cluster"), clusterUsage)
		return nil
	}
	switch args[0] {
	case "elect-leaders":
		return runClusterElectLeaders(e, args[1:])
	case "rebalance":
		return runClusterRebalance(e, args[1:])
	case "info":
	default:
		return e.usagef("unknown subcommand %q: want info, elect-leaders or rebalance", args[0])
	}
	e.name = "moldau cluster info"
	fs := newFlagSet("cluster info")
	var bootstrap string
	stringVars(fs, &bootstrap, "", "comma-separated bootstrap brokers (default $MOLDAU_BOOTSTRAP or "+DefaultBootstrap+")", "bootstrap-server", "b", "brokers")
	pos, err := e.parseArgs(fs, args[1:], clusterUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unexpected arguments: %v", pos)
	}
	adm, err := newAdmin(e.bootstrap(bootstrap))
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := e.adminCtx()
	defer cancel()
	md, err := adm.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	writeClusterInfo(e.stdout, clusterInfo{
		ClusterID:  md.Cluster,
		Controller: md.Controller,
		Brokers:    md.Brokers,
		Topics:     len(md.Topics),
	})
	return nil
}
