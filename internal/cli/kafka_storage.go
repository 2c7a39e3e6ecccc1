package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/metaprops"
	"github.com/moldau/moldau/internal/vfs"
)

// kafka-storage (and `moldau storage`): Kafka's storage tool (StorageTool.scala, Formatter.java)
// for Moldau's log dirs: format writes meta.properties (what a node otherwise writes on its
// first start), info prints it, random-uuid prints a new cluster id. Output and messages are
// Kafka's.

const kafkaStorageUsage = `Usage: kafka-storage {info,format,random-uuid,version-mapping,feature-dependencies} ...

The Kafka storage tool (Apache Kafka compatible).

  format -t CLUSTER_ID -c server.properties [--ignore-formatted] [--standalone | --no-initial-controllers]
                Format the Kafka log directories on this node.
  info -c server.properties
                Get information about the Kafka log directories on this node.
  random-uuid   Print a random UUID.
  version-mapping [--release-version VERSION]
                Look up the features a release version sets.
  feature-dependencies --feature F=L ...
                Look up the dependencies of a feature level.`

// storageMetadataVersion is what format reports: the metadata.version a new cluster starts at.
func storageMetadataVersion() string {
	v, _ := metadata.MetadataVersionByLevel(metadata.LatestMetadataVersion)
	return v.Version
}

func runKafkaStorage(e *env, args []string) error {
	if len(args) == 0 {
		return e.usagef("a command is required: info, format or random-uuid")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "--help", "help":
		fmt.Fprintln(e.stdout, kafkaStorageUsage)
		return nil
	case "random-uuid":
		if len(rest) > 0 && rest[0] != "-h" && rest[0] != "--help" {
			return e.usagef("random-uuid takes no arguments, got %q", rest)
		}
		fmt.Fprintln(e.stdout, metaprops.RandomUUID())
		return nil
	case "format":
		return e.storageFormat(rest)
	case "info":
		return e.storageInfo(rest)
	case "version-mapping":
		fs := newFlagSet(e.name + " version-mapping")
		var release string
		stringVars(fs, &release, "", "the release `version` to map (default: the latest)", "release-version", "r")
		if _, err := e.parseArgs(fs, rest, kafkaStorageUsage); err != nil {
			return err
		}
		return e.featureVersionMapping(release)
	case "feature-dependencies":
		fs := newFlagSet(e.name + " feature-dependencies")
		var features listFlag
		fs.Var(&features, "feature", "a `feature=level` to look up")
		if _, err := e.parseArgs(fs, rest, kafkaStorageUsage); err != nil {
			return err
		}
		return e.featureDependencies(features)
	default:
		return e.usagef("invalid choice: '%s' (choose from 'info', 'format', 'random-uuid')", cmd)
	}
}

// storageConfig reads a server.properties as `moldau server --config` does (no environment):
// the same validation, so a file the server would refuse is refused here too.
func (e *env) storageConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, e.usagef("argument --config/-c is required")
	}
	cfg, err := config.ParseServerArgs([]string{"--config", path}, nil)
	if err != nil {
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	return cfg, nil
}

func (e *env) storageFormat(args []string) error {
	fs := newFlagSet(e.name + " format")
	var cfgPath, clusterID, release, initial string
	var features, scram listFlag
	var ignoreFormatted, standalone, noInitial bool
	stringVars(fs, &cfgPath, "", "the Kafka configuration `file` to use (required)", "config", "c")
	stringVars(fs, &clusterID, "", "the cluster `ID` to use (required)", "cluster-id", "t")
	stringVars(fs, &release, "", "the release `version` (metadata.version) to format for; a new Moldau cluster starts at the latest and can be downgraded with kafka-features", "release-version", "r")
	stringVars(fs, &initial, "", "initial dynamic quorum `voters` (not supported: Moldau's quorum is a static voter set)", "initial-controllers", "I")
	for _, n := range []string{"feature", "f"} {
		fs.Var(&features, n, "a `feature=level` (accepted and ignored: Moldau has no feature versions)")
	}
	for _, n := range []string{"add-scram", "S"} {
		fs.Var(&scram, n, "a SCRAM `credential` (not supported: Moldau has no SASL)")
	}
	for _, n := range []string{"ignore-formatted", "g"} {
		fs.BoolVar(&ignoreFormatted, n, false, "skip over already formatted directories rather than failing")
	}
	for _, n := range []string{"standalone", "s"} {
		fs.BoolVar(&standalone, n, false, "initialize a controller as a single-node quorum")
	}
	for _, n := range []string{"no-initial-controllers", "N"} {
		fs.BoolVar(&noInitial, n, false, "initialize a server without a quorum topology")
	}
	pos, err := e.parseArgs(fs, args, kafkaStorageUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unrecognized arguments: '%s'", strings.Join(pos, " "))
	}
	if clusterID == "" {
		return e.usagef("argument --cluster-id/-t is required")
	}
	cfg, err := e.storageConfig(cfgPath)
	if err != nil {
		return err
	}
	if k, _ := config.BrokerKey("cluster.id"); k.Validate(clusterID) != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("Cluster ID string %s is not valid: expected a non-empty string without spaces", clusterID)}
	}
	exclusive := 0
	for _, set := range []bool{standalone, noInitial, initial != ""} {
		if set {
			exclusive++
		}
	}
	switch {
	case len(scram) > 0:
		return &exitError{code: 1, msg: "--add-scram is not supported: Moldau has no SASL authentication yet"}
	case exclusive > 1:
		return e.usagef("arguments --standalone, --no-initial-controllers and --initial-controllers are mutually exclusive")
	case initial != "":
		return &exitError{code: 1, msg: "--initial-controllers is not supported: Moldau's metadata quorum is a static voter set; list the voters in controller.quorum.voters on every node instead"}
	case standalone && !cfg.IsController:
		return &exitError{code: 1, msg: "You can only use --standalone on a controller."}
	case (standalone || noInitial) && cfg.Raw["controller.quorum.voters"] != "":
		return &exitError{code: 1, msg: "You cannot specify controller.quorum.voters and format the node with --initial-controllers or --standalone. If you want to use dynamic quorum, please remove controller.quorum.voters and specify controller.quorum.bootstrap.servers instead."}
	case standalone && !cfg.Standalone():
		return &exitError{code: 1, msg: "--standalone needs a single-controller quorum: controller.quorum.bootstrap.servers must name only this node's controller listener"}
	case cfg.IsController && cfg.Raw["controller.quorum.voters"] == "" && len(cfg.ControllerQuorumBootstrapServers) > 0 && !standalone && !noInitial:
		return &exitError{code: 1, msg: "Because controller.quorum.voters is not set on this controller, you must specify one of the following: --standalone, --initial-controllers, or --no-initial-controllers."}
	}
	if len(features) > 0 {
		fmt.Fprintf(e.stderr, "%s: note: ignoring --feature %s: Moldau has no feature versions\n", e.name, strings.Join(features, ", "))
	}
	version := storageMetadataVersion()
	if release != "" {
		mv, ok := metadata.ParseMetadataVersion(release)
		if !ok {
			return unknownMetadataVersion(release)
		}
		if mv.Level > metadata.LatestMetadataVersion {
			return &exitError{code: 1, msg: fmt.Sprintf("metadata.version %s is not supported by this Moldau build: the latest is %s.", mv.Version, version)}
		}
		if mv.Level < metadata.LatestMetadataVersion {
			fmt.Fprintf(e.stderr, "%s: note: a new Moldau cluster starts at metadata.version %s; after the first start, kafka-features downgrade --release-version %s sets %s where no metadata change is in between\n", e.name, version, release, mv.Version)
		}
	}

	dirs := slices.Sorted(slices.Values(cfg.LogDirs))
	ens, err := metaprops.Load(vfs.Default, dirs)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if err := ens.Verify(clusterID, cfg.NodeID); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	empty := ens.Empty()
	if !ignoreFormatted && len(empty) < len(dirs) {
		for _, d := range dirs {
			if !slices.Contains(empty, d) {
				return &exitError{code: 1, msg: fmt.Sprintf("Log directory %s is already formatted. Use --ignore-formatted to ignore this directory and format the others.", d)}
			}
		}
	}
	if len(empty) == 0 {
		fmt.Fprintln(e.stdout, "All of the log directories are already formatted.")
		return nil
	}
	for _, d := range empty {
		kind := "data directory"
		if d == cfg.LogDirs[0] { // the raft log (__raft) lives in the first log dir
			kind = "metadata directory"
			if standalone {
				kind = "dynamic metadata voter directory"
			} else if noInitial {
				kind = "dynamic metadata directory"
			}
		}
		fmt.Fprintf(e.stdout, "Formatting %s %s with metadata.version %s.\n", kind, d, version)
		if err := ens.Format(d, clusterID, cfg.NodeID); err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
	}
	return nil
}

func (e *env) storageInfo(args []string) error {
	fs := newFlagSet(e.name + " info")
	var cfgPath string
	stringVars(fs, &cfgPath, "", "the Kafka configuration `file` to use (required)", "config", "c")
	pos, err := e.parseArgs(fs, args, kafkaStorageUsage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return e.usagef("unrecognized arguments: '%s'", strings.Join(pos, " "))
	}
	cfg, err := e.storageConfig(cfgPath)
	if err != nil {
		return err
	}
	dirs := slices.Sorted(slices.Values(cfg.LogDirs))
	var problems, found []string
	var first *metaprops.Props
	for _, d := range dirs {
		fi, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			problems = append(problems, d+" does not exist")
			continue
		case err != nil:
			problems = append(problems, fmt.Sprintf("Error loading %s: %v", d, err))
			continue
		case !fi.IsDir():
			problems = append(problems, d+" is not a directory")
			continue
		}
		found = append(found, d)
		p, err := metaprops.Read(vfs.Default, d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			problems = append(problems, d+" is not formatted.")
		case err != nil:
			problems = append(problems, fmt.Sprintf("Error loading %s: %v", metaprops.Path(d), err))
		case first == nil:
			first = &p
		case first.ClusterID != p.ClusterID:
			problems = append(problems, "Mismatched cluster IDs between storage directories.")
		case first.NodeID != p.NodeID:
			problems = append(problems, "Mismatched node IDs between storage directories.")
		}
	}
	if first != nil && first.Version == 0 {
		problems = append(problems, "The kafka configuration file appears to be for a cluster in KRaft mode, but the directories are formatted for legacy mode.")
	}
	if len(dirs) == 0 {
		fmt.Fprintln(e.stdout, "No directories specified.")
		return nil
	}
	printList := func(one, many string, items []string) {
		if len(items) == 0 {
			return
		}
		if len(items) == 1 {
			fmt.Fprintln(e.stdout, one)
		} else {
			fmt.Fprintln(e.stdout, many)
		}
		for _, it := range items {
			fmt.Fprintf(e.stdout, "  %s\n", it)
		}
		fmt.Fprintln(e.stdout)
	}
	printList("Found log directory:", "Found log directories:", found)
	if first != nil {
		fmt.Fprintf(e.stdout, "Found metadata: %s\n\n", first)
	}
	printList("Found problem:", "Found problems:", problems)
	if len(problems) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
