package cli

// kafka-features: Kafka's feature tool (FeatureCommand.java) with its subcommands, flags, output
// lines and messages: describe (ApiVersions' supported and finalized features), upgrade,
// downgrade and disable (UpdateFeatures), version-mapping and feature-dependencies (local, from
// this build's metadata.version table). What a release version maps to is Moldau's: the
// metadata.version of that release and level 0 for the features Moldau does not implement yet.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
)

const kafkaFeaturesUsage = `usage: kafka-features [-h] [--command-config COMMAND_CONFIG]
                      [--bootstrap-server BOOTSTRAP_SERVER |
                      --bootstrap-controller BOOTSTRAP_CONTROLLER]
                      {describe,upgrade,downgrade,disable,version-mapping,feature-dependencies}
                      ...

This tool manages feature flags in Kafka.

  describe              Describes the current active feature flags.
  upgrade               Upgrade one or more feature flags.
                        [--metadata VERSION] [--release-version VERSION] [--feature F=L ...] [--dry-run]
  downgrade             Downgrade one or more feature flags.
                        [--metadata VERSION] [--release-version VERSION] [--feature F=L ...] [--unsafe] [--dry-run]
  disable               Disable one or more feature flags. This is the same as downgrading the version to zero.
                        --feature F ... [--unsafe] [--dry-run]
  version-mapping       Look up the corresponding features for a given metadata version.
                        [--release-version VERSION]
  feature-dependencies  Look up dependencies for a given feature version.
                        --feature F=L ...`

// terse is Kafka's TerseException: the message alone on stderr, exit 1.
func featureFail(format string, a ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, a...)}
}

func runKafkaFeatures(e *env, args []string) error {
	fs := newFlagSet("kafka-features")
	var bootstrap, bootstrapController, commandConfig, metadataFlag, release, nodeID string
	var features listFlag
	var dryRun, unsafe bool
	fs.StringVar(&bootstrap, "bootstrap-server", "", "A comma-separated list of host:port pairs to use for establishing the connection to the Kafka cluster.")
	fs.StringVar(&bootstrapController, "bootstrap-controller", "", "A comma-separated list of host:port pairs to use for establishing the connection to the KRaft quorum (every Moldau node answers: the same as --bootstrap-server).")
	fs.StringVar(&commandConfig, "command-config", "", "Property file containing configs to be passed to Admin Client (bootstrap.servers is used).")
	fs.StringVar(&nodeID, "node-id", "", "The node id to which the requests should be sent (accepted; Moldau answers on every node).")
	fs.StringVar(&metadataFlag, "metadata", "", "DEPRECATED -- The level to which we should upgrade or downgrade the metadata. For example, 3.3-IV3.")
	fs.StringVar(&release, "release-version", "", "The release version to update all features to, or to look up with version-mapping.")
	fs.Var(&features, "feature", "A feature=level (upgrade, downgrade, feature-dependencies) or a feature (disable).")
	fs.BoolVar(&dryRun, "dry-run", false, "Validate this change, but do not perform it.")
	fs.BoolVar(&unsafe, "unsafe", false, "Perform this downgrade even if it may irreversibly destroy metadata.")
	pos, err := e.parseArgs(fs, args, kafkaFeaturesUsage)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return e.usagef("too few arguments: a command is required (describe, upgrade, downgrade, disable, version-mapping, feature-dependencies)")
	}
	cmd := pos[0]
	if len(pos) > 1 {
		return e.usagef("unrecognized arguments: '%s'", strings.Join(pos[1:], " "))
	}
	switch cmd {
	case "version-mapping":
		return e.featureVersionMapping(release)
	case "feature-dependencies":
		return e.featureDependencies(features)
	case "describe", "upgrade", "downgrade", "disable":
	default:
		return e.usagef("invalid choice: '%s' (choose from 'describe', 'upgrade', 'downgrade', 'disable', 'version-mapping', 'feature-dependencies')", cmd)
	}
	if nodeID != "" {
		if n, err := strconv.Atoi(nodeID); err != nil || n < 0 {
			return featureFail("Invalid node id %s: must be non-negative.", nodeID)
		}
	}
	if bootstrap != "" && bootstrapController != "" {
		return e.usagef("argument --bootstrap-controller: not allowed with argument --bootstrap-server")
	}
	var updates []metadata.FeatureUpdate
	switch cmd {
	case "upgrade", "downgrade":
		upgradeType := metadata.UpgradeTypeUpgrade
		if cmd == "downgrade" {
			upgradeType = metadata.UpgradeTypeSafeDowngrade
			if unsafe {
				upgradeType = metadata.UpgradeTypeUnsafeDowngrade
			}
		}
		if updates, err = e.featureUpdates(metadataFlag, release, features, upgradeType); err != nil {
			return err
		}
	case "disable":
		upgradeType := metadata.UpgradeTypeSafeDowngrade
		if unsafe {
			upgradeType = metadata.UpgradeTypeUnsafeDowngrade
		}
		for _, f := range features {
			if slices.ContainsFunc(updates, func(u metadata.FeatureUpdate) bool { return u.Name == f }) {
				return featureFail("Feature %s was specified more than once.", f)
			}
			updates = append(updates, metadata.FeatureUpdate{Name: f, Level: 0, UpgradeType: upgradeType})
		}
	}
	if cmd != "describe" && len(updates) == 0 {
		return featureFail("You must specify at least one feature to %s", cmd)
	}

	cfgBootstrap, _, err := e.commandConfigBootstrap(commandConfig, "command-config", nil)
	if err != nil {
		return err
	}
	seeds, err := e.kafkaBootstrap(bootstrap, bootstrapController, cfgBootstrap)
	if err != nil {
		return err
	}
	cl, err := newClient(seeds)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := e.adminCtx()
	defer cancel()

	if cmd == "describe" {
		resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("describe features: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("describe features: %w", err)
		}
		writeFeatures(e, resp)
		return nil
	}

	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = int32(e.adminTimeout.Milliseconds())
	req.ValidateOnly = dryRun
	for _, u := range updates {
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = u.Name, u.Level, u.UpgradeType
		fu.AllowDowngrade = u.UpgradeType != metadata.UpgradeTypeUpgrade
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
	}
	errs := map[string]error{}
	resp, err := req.RequestWith(ctx, cl)
	switch {
	case err != nil:
		for _, u := range updates {
			errs[u.Name] = err
		}
	case resp.ErrorCode != 0:
		for _, u := range updates {
			errs[u.Name] = kafkaError(resp.ErrorCode, resp.ErrorMessage)
		}
	default:
		for _, r := range resp.Results {
			if r.ErrorCode != 0 {
				errs[r.Feature] = kafkaError(r.ErrorCode, r.ErrorMessage)
			}
		}
	}
	return e.writeFeatureUpdates(cmd, updates, errs, dryRun)
}

// kafkaError is the message Kafka's admin client gives for an error code: the broker's message,
// or the code's default text.
func kafkaError(code int16, msg *string) error {
	if msg != nil && *msg != "" {
		return fmt.Errorf("%s", *msg)
	}
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) {
		return fmt.Errorf("%s", ke.Description)
	}
	return fmt.Errorf("error code %d", code)
}

// featureUpdates builds the updates of upgrade/downgrade as FeatureCommand.handleUpgradeOrDowngrade.
func (e *env) featureUpdates(metadataFlag, release string, features []string, upgradeType int8) ([]metadata.FeatureUpdate, error) {
	if release != "" && (metadataFlag != "" || len(features) > 0) {
		return nil, featureFail("Can not specify `release-version` with other feature flags.")
	}
	var updates []metadata.FeatureUpdate
	if release != "" {
		mv, ok := metadata.ParseMetadataVersion(release)
		if !ok {
			return nil, unknownMetadataVersion(release)
		}
		updates = append(updates, metadata.FeatureUpdate{Name: metadata.FeatureMetadataVersion, Level: mv.Level, UpgradeType: upgradeType})
		for _, f := range metadata.FeatureNames() {
			level := metadata.DefaultFeatureLevel(f, mv.Level)
			if upgradeType != metadata.UpgradeTypeUpgrade || level > 0 { // never "upgrade" a feature to 0
				updates = append(updates, metadata.FeatureUpdate{Name: f, Level: level, UpgradeType: upgradeType})
			}
		}
		return updates, nil
	}
	if metadataFlag != "" {
		fmt.Fprintln(e.stdout, " `metadata` flag is deprecated and may be removed in a future release.")
		mv, ok := metadata.ParseMetadataVersion(metadataFlag)
		if !ok {
			return nil, unknownMetadataVersion(metadataFlag)
		}
		updates = append(updates, metadata.FeatureUpdate{Name: metadata.FeatureMetadataVersion, Level: mv.Level, UpgradeType: upgradeType})
	}
	for _, f := range features {
		name, level, err := parseFeatureLevel(f)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(updates, func(u metadata.FeatureUpdate) bool { return u.Name == name }) {
			return nil, featureFail("Feature %s was specified more than once.", name)
		}
		updates = append(updates, metadata.FeatureUpdate{Name: name, Level: level, UpgradeType: upgradeType})
	}
	return updates, nil
}

// parseFeatureLevel parses feature=level as FeatureCommand.parseNameAndLevel.
func parseFeatureLevel(s string) (string, int16, error) {
	name, levelS, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, featureFail("Can't parse feature=level string %s: equals sign not found.", s)
	}
	name, levelS = strings.TrimSpace(name), strings.TrimSpace(levelS)
	level, err := strconv.ParseInt(levelS, 10, 16)
	if err != nil {
		return "", 0, featureFail("Can't parse feature=level string %s: unable to parse %s as a short.", s, levelS)
	}
	if level < 0 {
		return "", 0, featureFail("Cannot specify a negative version level.")
	}
	return name, int16(level), nil
}

func unknownMetadataVersion(s string) error {
	names := make([]string, 0, len(metadata.MetadataVersions()))
	for _, v := range metadata.MetadataVersions() {
		names = append(names, v.Version)
	}
	return featureFail("Unknown metadata.version '%s'. Supported metadata.version are: %s", s, strings.Join(names, ", "))
}

// levelString is FeatureCommand.levelToString: metadata.version levels by name.
func levelString(feature string, level int16) string {
	if feature == metadata.FeatureMetadataVersion {
		if v, ok := metadata.MetadataVersionByLevel(level); ok {
			return v.Version
		}
		return fmt.Sprintf("UNKNOWN %d", level)
	}
	return strconv.Itoa(int(level))
}

// writeFeatures prints describe's lines: every supported feature, sorted, with its finalized level.
func writeFeatures(e *env, resp *kmsg.ApiVersionsResponse) {
	finalized := map[string]int16{}
	for _, f := range resp.FinalizedFeatures {
		finalized[f.Name] = f.MaxVersionLevel
	}
	epoch := "-"
	if resp.FinalizedFeaturesEpoch >= 0 {
		epoch = strconv.FormatInt(resp.FinalizedFeaturesEpoch, 10)
	}
	supported := map[string]kmsg.ApiVersionsResponseSupportedFeature{}
	for _, f := range resp.SupportedFeatures {
		supported[f.Name] = f
	}
	for _, name := range slices.Sorted(maps.Keys(supported)) {
		f := supported[name]
		fmt.Fprintf(e.stdout, "Feature: %-40s  SupportedMinVersion: %-15s  SupportedMaxVersion: %-15s  FinalizedVersionLevel: %-15s  Epoch: %s\n",
			name, levelString(name, f.MinVersion), levelString(name, f.MaxVersion), levelString(name, finalized[name]), epoch)
	}
}

// writeFeatureUpdates prints one line per feature, sorted, as FeatureCommand.update, and fails
// with the count of failures.
func (e *env) writeFeatureUpdates(op string, updates []metadata.FeatureUpdate, errs map[string]error, dryRun bool) error {
	slices.SortFunc(updates, func(a, b metadata.FeatureUpdate) int { return strings.Compare(a.Name, b.Name) })
	failures := 0
	for _, u := range updates {
		if err := errs[u.Name]; err != nil {
			helper := "Could not "
			if dryRun {
				helper = "Can not "
			}
			suffix := fmt.Sprintf("%s %s to %d", op, u.Name, u.Level)
			if op == "disable" {
				suffix = "disable " + u.Name
			}
			fmt.Fprintf(e.stdout, "%s%s. %v\n", helper, suffix, err)
			failures++
			continue
		}
		verb := " was "
		if dryRun {
			verb = " can be "
		}
		obj := fmt.Sprintf("%sd to %d.", op, u.Level)
		if op == "disable" {
			obj = "disabled."
		}
		fmt.Fprintf(e.stdout, "%s%s%s\n", u.Name, verb, obj)
	}
	if failures > 0 {
		return featureFail("%d out of %d operation(s) failed.", failures, len(updates))
	}
	return nil
}

// featureVersionMapping prints the features a release version sets (FeatureCommand.handleVersionMapping).
func (e *env) featureVersionMapping(release string) error {
	var mv metadata.MetadataVersion
	if release == "" {
		mv, _ = metadata.MetadataVersionByLevel(metadata.LatestMetadataVersion)
		release = mv.Version
	} else {
		var ok bool
		if mv, ok = metadata.ParseMetadataVersion(release); !ok {
			return unknownMetadataVersion(release)
		}
	}
	fmt.Fprintf(e.stdout, "metadata.version=%d (%s)\n", mv.Level, release)
	for _, f := range metadata.FeatureNames() {
		fmt.Fprintf(e.stdout, "%s=%d\n", f, metadata.DefaultFeatureLevel(f, mv.Level))
	}
	return nil
}

// featureDependencies prints what each feature=level depends on (FeatureCommand.handleFeatureDependencies).
// No feature level this build knows depends on another.
func (e *env) featureDependencies(features []string) error {
	for _, f := range features {
		name, level, err := parseFeatureLevel(f)
		if err != nil {
			return err
		}
		if name == metadata.FeatureMetadataVersion {
			mv, ok := metadata.MetadataVersionByLevel(level)
			if !ok {
				return featureFail("Unknown metadata.version %d", level)
			}
			fmt.Fprintf(e.stdout, "%s=%d (%s) has no dependencies.\n", name, level, mv.Version)
			continue
		}
		lo, hi, ok := metadata.SupportedFeatureRange(name)
		if !ok {
			return featureFail("Unknown feature: %s", name)
		}
		if level < lo || level > hi {
			return featureFail("No feature:%s with feature level %d", name, level)
		}
		fmt.Fprintf(e.stdout, "%s=%d has no dependencies.\n", name, level)
	}
	return nil
}
