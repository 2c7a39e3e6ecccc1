package metadata

// Feature versions (KIP-584, KIP-778): cluster-wide levels finalized in the metadata log by
// FeatureLevelRecords, advertised in ApiVersions (SupportedFeatures, FinalizedFeatures,
// FinalizedFeaturesEpoch) and changed with UpdateFeatures, as in Kafka's FeatureControlManager.
//
// metadata.version names the metadata format and inter-node protocol level a cluster runs; a
// Moldau build supports MinMetadataVersion..LatestMetadataVersion and a new cluster starts at
// LatestMetadataVersion (the controller writes it when it first leads, or when it leads a log an
// older build wrote without it). The other features Kafka 4.x clients and tools read are
// kraft.version (dynamic quorums, KIP-853: Moldau's quorum is a static voter set),
// group.version (the KIP-848 consumer group protocol) and transaction.version (KIP-890): Moldau
// implements transaction.version 0..2 (2: KIP-890 part 2, which a new cluster finalizes, as
// Kafka 4.0+ does from metadata.version 4.0-IV2) and neither of the others, which support only
// level 0 and stay unfinalized.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Feature names.
const (
	FeatureMetadataVersion    = "metadata.version"
	FeatureKRaftVersion       = "kraft.version"
	FeatureGroupVersion       = "group.version"
	FeatureTransactionVersion = "transaction.version"
)

// ErrInvalidUpdateVersion is an UpdateFeatures refusal (INVALID_UPDATE_VERSION).
var ErrInvalidUpdateVersion = errors.New("invalid update version")

// MetadataVersion is one metadata.version level with its name, as Kafka's MetadataVersion enum.
type MetadataVersion struct {
	Level   int16
	Version string // "4.1-IV1"
	// Changed is Kafka's didMetadataChange: the level changed the metadata format, so a
	// downgrade across it could lose metadata and is refused.
	Changed bool
}

// Release is the release part of the version ("4.1" of "4.1-IV1").
func (v MetadataVersion) Release() string { r, _, _ := strings.Cut(v.Version, "-"); return r }

// metadataVersions are Kafka's production metadata versions from 3.3-IV3 (Kafka 4's minimum) to
// 4.4-IV2, in order (the table of Kafka 4.4's MetadataVersion). This build supports only up to
// LatestMetadataVersion; the rest are known so tools can name them.
var metadataVersions = []MetadataVersion{
	{7, "3.3-IV3", true}, {8, "3.4-IV0", true}, {9, "3.5-IV0", false}, {10, "3.5-IV1", false},
	{11, "3.5-IV2", true}, {12, "3.6-IV0", false}, {13, "3.6-IV1", true}, {14, "3.6-IV2", true},
	{15, "3.7-IV0", true}, {16, "3.7-IV1", false}, {17, "3.7-IV2", true}, {18, "3.7-IV3", false},
	{19, "3.7-IV4", false}, {20, "3.8-IV0", false}, {21, "3.9-IV0", false}, {22, "4.0-IV0", false},
	{23, "4.0-IV1", true}, {24, "4.0-IV2", false}, {25, "4.0-IV3", false}, {26, "4.1-IV0", false},
	{27, "4.1-IV1", false}, {28, "4.2-IV0", false}, {29, "4.2-IV1", false}, {30, "4.3-IV0", true},
	{31, "4.4-IV0", false}, {32, "4.4-IV1", true}, {33, "4.4-IV2", true},
}

// The metadata.version range this build supports. New clusters start at LatestMetadataVersion
// (4.1-IV1: the Kafka 4.1 release).
const (
	MinMetadataVersion    int16 = 7  // 3.3-IV3
	LatestMetadataVersion int16 = 27 // 4.1-IV1
)

// MetadataVersions returns the metadata versions known to this build, in order (a copy).
func MetadataVersions() []MetadataVersion { return slices.Clone(metadataVersions) }

// MetadataVersionByLevel returns the metadata version of a level.
func MetadataVersionByLevel(level int16) (MetadataVersion, bool) {
	for _, v := range metadataVersions {
		if v.Level == level {
			return v, true
		}
	}
	return MetadataVersion{}, false
}

// ParseMetadataVersion resolves a version string as Kafka's MetadataVersion.fromVersionString:
// "4.1-IV1", or a release "4.1" meaning its last internal version.
func ParseMetadataVersion(s string) (MetadataVersion, bool) {
	var found MetadataVersion
	ok := false
	for _, v := range metadataVersions {
		if v.Version == s || v.Release() == s {
			found, ok = v, true
		}
	}
	return found, ok
}

// FeatureRange is a range of feature levels a build supports.
type FeatureRange struct {
	Min int16 `json:"min"`
	Max int16 `json:"max"`
}

func (r FeatureRange) contains(l int16) bool { return l >= r.Min && l <= r.Max }

// String is Kafka's VersionRange.toString.
func (r FeatureRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(int(r.Min))
	}
	return fmt.Sprintf("%d-%d", r.Min, r.Max)
}

// supportedFeatures are the features this build knows, with the levels it supports.
var supportedFeatures = map[string]FeatureRange{
	FeatureMetadataVersion:    {MinMetadataVersion, LatestMetadataVersion},
	FeatureKRaftVersion:       {0, 0},
	FeatureGroupVersion:       {0, 0},
	FeatureTransactionVersion: {0, 2},
}

// SupportedFeatures returns the features this build supports (a copy): what a broker registers.
func SupportedFeatures() map[string]FeatureRange { return maps.Clone(supportedFeatures) }

// FeatureNames are the features besides metadata.version, in the order Kafka's tools list them.
var featureNames = []string{FeatureKRaftVersion, FeatureTransactionVersion, FeatureGroupVersion}

// FeatureNames returns the features besides metadata.version in Kafka's order.
func FeatureNames() []string { return slices.Clone(featureNames) }

// SupportedFeatureRange is the level range this build supports for a feature; ok is false for a
// feature it does not know.
func SupportedFeatureRange(name string) (minLevel, maxLevel int16, ok bool) {
	r, ok := supportedFeatures[name]
	return r.Min, r.Max, ok
}

// SupportedFeatureNames returns the features this build knows, sorted.
func SupportedFeatureNames() []string { return slices.Sorted(maps.Keys(supportedFeatures)) }

// DefaultFeatureLevel is the level a feature gets with a metadata.version on this build (Kafka's
// Feature.defaultLevel): transaction.version 2 from metadata.version 4.0-IV2 (Kafka's
// TransactionVersion.TV_2 bootstrap version), 0 for every feature Moldau does not implement.
func DefaultFeatureLevel(name string, metadataVersion int16) int16 {
	switch name {
	case FeatureMetadataVersion:
		return metadataVersion
	case FeatureTransactionVersion:
		if metadataVersion >= tv2MetadataVersion {
			return 2
		}
	}
	return 0
}

// tv2MetadataVersion is 4.0-IV2, the metadata.version from which Kafka bootstraps
// transaction.version 2.
const tv2MetadataVersion int16 = 24

// applyFeatureLevel sets a finalized level in im, copying its feature map (im is an image being
// built; the map may be shared with the image it was copied from).
func applyFeatureLevel(im *Image, r *FeatureLevelRecord) error {
	switch {
	case r.Name == "":
		return errors.New("feature level: empty feature name")
	case r.Level < 0:
		return fmt.Errorf("feature level %s: negative level %d", r.Name, r.Level)
	case r.Name == FeatureMetadataVersion && r.Level == 0:
		return errors.New("feature level: metadata.version cannot be 0")
	}
	m := maps.Clone(im.features)
	if m == nil {
		m = map[string]int16{}
	}
	if r.Level == 0 {
		delete(m, r.Name)
	} else {
		m[r.Name] = r.Level
	}
	im.features = m
	return nil
}

// FinalizedFeatures returns the finalized feature levels (a copy; features at level 0 are absent).
func (im *Image) FinalizedFeatures() map[string]int16 { return maps.Clone(im.features) }

// FeatureLevel is the finalized level of a feature, 0 when it is not finalized.
func (im *Image) FeatureLevel(name string) int16 { return im.features[name] }

// MetadataVersion is the finalized metadata.version level, 0 before the controller wrote one.
func (im *Image) MetadataVersion() int16 { return im.features[FeatureMetadataVersion] }

// Upgrade types of UpdateFeatures (Kafka's FeatureUpdate.UpgradeType codes).
const (
	UpgradeTypeUpgrade         int8 = 1
	UpgradeTypeSafeDowngrade   int8 = 2
	UpgradeTypeUnsafeDowngrade int8 = 3
)

// FeatureUpdate is one feature of an UpdateFeatures request.
type FeatureUpdate struct {
	Name        string
	Level       int16
	UpgradeType int8
}

// UpdateFeatures validates feature level changes against the finalized levels and what this
// build supports, and (unless validateOnly) commits them, all or none, as Kafka's
// FeatureControlManager.updateFeatures does. A refusal wraps ErrInvalidUpdateVersion with
// Kafka's message. Forwarded to the raft leader as an UpdateFeaturesRequest.
func (c *Controller) UpdateFeatures(ctx context.Context, updates []FeatureUpdate, validateOnly bool) error {
	return c.route(ctx, func() error { return c.localUpdateFeatures(ctx, updates, validateOnly) },
		func(ctx context.Context, send sendFunc) error {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.TimeoutMillis = timeoutMillis(ctx)
			req.ValidateOnly = validateOnly
			for _, u := range updates {
				fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
				fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = u.Name, u.Level, u.UpgradeType
				fu.AllowDowngrade = u.UpgradeType != UpgradeTypeUpgrade // v0
				req.FeatureUpdates = append(req.FeatureUpdates, fu)
			}
			resp, err := send(ctx, req)
			if err != nil {
				return err
			}
			r := resp.(*kmsg.UpdateFeaturesResponse)
			if err := remoteErr(r.ErrorCode, r.ErrorMessage); err != nil {
				return err
			}
			for _, res := range r.Results { // v0-1 answers per feature as well
				if err := remoteErr(res.ErrorCode, res.ErrorMessage); err != nil {
					return err
				}
			}
			return nil
		})
}

func (c *Controller) localUpdateFeatures(ctx context.Context, updates []FeatureUpdate, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	records, err := planFeatureUpdates(c.Image(), c.cfg.NodeID, updates)
	if err != nil || validateOnly || len(records) == 0 {
		return err
	}
	if err := c.commitLocked(ctx, records...); err != nil {
		return fmt.Errorf("update features: %w", err)
	}
	return nil
}

// planFeatureUpdates checks updates against im (Kafka's FeatureControlManager.updateFeature) and
// returns the records that make them. The first refusal fails the whole request.
func planFeatureUpdates(im *Image, nodeID int32, updates []FeatureUpdate) ([]Record, error) {
	seen := map[string]bool{}
	var records []Record
	for _, u := range updates {
		if seen[u.Name] {
			return nil, fmt.Errorf("%w: feature %s was specified more than once", ErrInvalidRequest, u.Name)
		}
		seen[u.Name] = true
		if err := checkFeatureUpdate(im, nodeID, u); err != nil {
			return nil, err
		}
		records = append(records, &FeatureLevelRecord{Name: u.Name, Level: u.Level})
	}
	return records, nil
}

// updateVersionError is a refusal with Kafka's message verbatim (the tools print it as it is).
type updateVersionError struct{ msg string }

func (e *updateVersionError) Error() string        { return e.msg }
func (e *updateVersionError) Is(target error) bool { return target == ErrInvalidUpdateVersion }

func invalidUpdateVersion(name string, level int16, msg string) error {
	return &updateVersionError{fmt.Sprintf("Invalid update version %d for feature %s. %s", level, name, msg)}
}

func checkFeatureUpdate(im *Image, nodeID int32, u FeatureUpdate) error {
	if u.UpgradeType < UpgradeTypeUpgrade || u.UpgradeType > UpgradeTypeUnsafeDowngrade {
		return invalidUpdateVersion(u.Name, u.Level, "The controller does not support the given upgrade type.")
	}
	current := im.FeatureLevel(u.Name)
	if u.Level < 0 {
		return invalidUpdateVersion(u.Name, u.Level, "A feature version cannot be less than 0.")
	}
	if reason := notSupported(u.Level, fmt.Sprintf("Local controller %d", nodeID), supportedFeatures[u.Name]); reason != "" {
		return invalidUpdateVersion(u.Name, u.Level, reason)
	}
	// Every registered broker must support the level. One registered by a build without
	// feature versions (before issue 9) supports none: it cannot decode the FeatureLevelRecord,
	// so a cluster upgrades only once every node runs a build that has them.
	for _, b := range im.Brokers() {
		if reason := notSupported(u.Level, fmt.Sprintf("Broker %d", b.NodeID), b.Features[u.Name]); reason != "" {
			return invalidUpdateVersion(u.Name, u.Level, reason)
		}
	}
	switch {
	case u.Level < current && u.UpgradeType == UpgradeTypeUpgrade:
		return invalidUpdateVersion(u.Name, u.Level, "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	case u.Level > current && u.UpgradeType != UpgradeTypeUpgrade:
		return invalidUpdateVersion(u.Name, u.Level, "Can't downgrade to a newer version.")
	}
	if u.Name != FeatureMetadataVersion {
		if _, known := supportedFeatures[u.Name]; !known {
			return invalidUpdateVersion(u.Name, u.Level, "Feature "+u.Name+" not found.")
		}
		return nil // no feature this build supports above 0 depends on another
	}
	invalidMV := func(msg string) error {
		return &updateVersionError{fmt.Sprintf("Invalid metadata.version %d. %s", u.Level, msg)}
	}
	if _, ok := MetadataVersionByLevel(u.Level); !ok {
		return invalidMV("Unknown metadata.version.")
	}
	if u.Level < current && metadataChangedBetween(u.Level, current) {
		if u.UpgradeType == UpgradeTypeUnsafeDowngrade {
			return invalidMV("Unsafe metadata downgrade is not supported in this version.")
		}
		return invalidMV("Refusing to perform the requested downgrade because it might delete metadata information.")
	}
	return nil
}

// notSupported is Kafka's QuorumFeatures.reasonNotSupported: "" when r contains level. A feature
// missing from a map gives the zero range, Kafka's DISABLED.
func notSupported(level int16, what string, r FeatureRange) string {
	switch {
	case r.contains(level):
		return ""
	case r.Max == 0:
		return what + " does not support this feature."
	default:
		return what + " only supports versions " + r.String()
	}
}

// checkRegistrationFeatures refuses a broker whose build does not support a finalized level
// (Kafka's ClusterControlManager.processRegistrationFeature): UNSUPPORTED_VERSION.
func checkRegistrationFeatures(im *Image, r BrokerRegistration) error {
	if r.Features == nil {
		return nil
	}
	finalized := im.FinalizedFeatures()
	for _, name := range slices.Sorted(maps.Keys(finalized)) {
		level := finalized[name]
		if sr := r.Features[name]; !sr.contains(level) {
			return fmt.Errorf("register broker %d: Unable to register because the broker does not support finalized version %d of %s. The broker wants a version between %d and %d, inclusive.: %w",
				r.NodeID, level, name, sr.Min, sr.Max, kerr.UnsupportedVersion)
		}
	}
	return nil
}

// metadataChangedBetween is Kafka's MetadataVersion.checkIfMetadataChanged: whether a version
// after from, up to and including to, changed the metadata format.
func metadataChangedBetween(from, to int16) bool {
	for _, v := range metadataVersions {
		if v.Level > from && v.Level <= to && v.Changed {
			return true
		}
	}
	return false
}

// ensureMetadataVersionLocked writes metadata.version (LatestMetadataVersion) when the image has
// none: at bootstrap, and in a log an older build wrote once no node of a build without feature
// versions is registered any more (the controller tries again after each registration). While
// one is, nothing is written: that node would skip the FeatureLevelRecord, and the records
// metadata.version allows (reassignments, reassign.go) would be lost on it. The record is a
// batch of its own. REQUIRES: c.mu is held.
func (c *Controller) ensureMetadataVersionLocked(ctx context.Context) error {
	im := c.Image()
	if im.MetadataVersion() != 0 {
		return nil
	}
	if _, older := olderBuildRegistered(im); older {
		return nil
	}
	recs := []Record{&FeatureLevelRecord{Name: FeatureMetadataVersion, Level: LatestMetadataVersion}}
	if im.FeatureLevel(FeatureTransactionVersion) == 0 {
		// A new cluster starts with the default levels of the other features too (Kafka's
		// bootstrap records); an existing one keeps its levels (kafka-features upgrade).
		if tv := DefaultFeatureLevel(FeatureTransactionVersion, LatestMetadataVersion); tv > 0 && bootstrapping(im) {
			recs = append(recs, &FeatureLevelRecord{Name: FeatureTransactionVersion, Level: tv})
		}
	}
	if err := c.commitLocked(ctx, recs...); err != nil {
		return fmt.Errorf("write metadata.version: %w", err)
	}
	return nil
}

// olderBuildRegistered returns a registered broker whose build has no feature versions (it
// registered without Features), if there is one.
func olderBuildRegistered(im *Image) (int32, bool) {
	for _, b := range im.Brokers() {
		if b.Features == nil {
			return b.NodeID, true
		}
	}
	return -1, false
}

// bootstrapping reports whether im is a new cluster's (no topic yet): only then does the
// controller finalize the features' default levels with metadata.version. A log an older build
// wrote keeps its feature levels until kafka-features upgrade raises them, as in Kafka.
func bootstrapping(im *Image) bool { return len(im.Topics()) == 0 }
