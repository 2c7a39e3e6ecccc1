package metadata

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestBootstrapWritesMetadataVersion(t *testing.T) {
	c := newTestController(t, 0)
	if got := c.Image().MetadataVersion(); got != 0 {
		t.Fatalf("before bootstrap: metadata.version %d", got)
	}
	ctx := context.Background()
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	im := c.Image()
	if got := im.MetadataVersion(); got != LatestMetadataVersion {
		t.Fatalf("metadata.version %d, want %d", got, LatestMetadataVersion)
	}
	// A new cluster finalizes transaction.version 2 with it, as Kafka 4.0+ bootstraps TV_2.
	if want := map[string]int16{FeatureMetadataVersion: LatestMetadataVersion, FeatureTransactionVersion: 2}; !maps.Equal(im.FinalizedFeatures(), want) {
		t.Fatalf("finalized %v, want %v", im.FinalizedFeatures(), want)
	}
	// A second leader (or a restart) writes nothing more.
	index := im.Index()
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if c.Image().Index() != index {
		t.Fatalf("a second bootstrap wrote an entry (index %d -> %d)", index, c.Image().Index())
	}
}

func TestMetadataVersionTable(t *testing.T) {
	for i, v := range metadataVersions {
		if i > 0 && v.Level != metadataVersions[i-1].Level+1 {
			t.Errorf("%s: level %d does not follow %d", v.Version, v.Level, metadataVersions[i-1].Level)
		}
	}
	for _, tc := range []struct {
		in    string
		level int16
		ok    bool
	}{{"4.1-IV1", 27, true}, {"4.1", 27, true}, {"4.0", 25, true}, {"3.3-IV3", 7, true}, {"3.3", 7, true}, {"4.4", 33, true}, {"3.2", 0, false}, {"bogus", 0, false}, {"", 0, false}} {
		v, ok := ParseMetadataVersion(tc.in)
		if ok != tc.ok || v.Level != tc.level {
			t.Errorf("ParseMetadataVersion(%q) = %d, %v; want %d, %v", tc.in, v.Level, ok, tc.level, tc.ok)
		}
	}
	if v, _ := MetadataVersionByLevel(LatestMetadataVersion); v.Version != "4.1-IV1" {
		t.Errorf("latest is %q", v.Version)
	}
}

func TestUpdateFeatures(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, 1)
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	up, safe, unsafe := UpgradeTypeUpgrade, UpgradeTypeSafeDowngrade, UpgradeTypeUnsafeDowngrade
	for _, tc := range []struct {
		name    string
		updates []FeatureUpdate
		wantErr string // "" = success
		wantMV  int16
	}{
		{"above the supported range", []FeatureUpdate{{FeatureMetadataVersion, 28, up}}, "Invalid update version 28 for feature metadata.version. Local controller 1 only supports versions 7-27", 27},
		{"metadata.version 0", []FeatureUpdate{{FeatureMetadataVersion, 0, safe}}, "Invalid update version 0 for feature metadata.version. Local controller 1 only supports versions 7-27", 27},
		{"negative", []FeatureUpdate{{FeatureGroupVersion, -1, up}}, "Invalid update version -1 for feature group.version. A feature version cannot be less than 0.", 27},
		{"unknown upgrade type", []FeatureUpdate{{FeatureMetadataVersion, 26, 0}}, "Invalid update version 26 for feature metadata.version. The controller does not support the given upgrade type.", 27},
		{"downgrade as an upgrade", []FeatureUpdate{{FeatureMetadataVersion, 26, up}}, "Invalid update version 26 for feature metadata.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.", 27},
		{"unsupported feature", []FeatureUpdate{{FeatureGroupVersion, 1, up}}, "Invalid update version 1 for feature group.version. Local controller 1 does not support this feature.", 27},
		{"unknown feature", []FeatureUpdate{{"foo.version", 1, up}}, "Invalid update version 1 for feature foo.version. Local controller 1 does not support this feature.", 27},
		{"unknown feature at 0", []FeatureUpdate{{"foo.version", 0, safe}}, "Invalid update version 0 for feature foo.version. Feature foo.version not found.", 27},
		{"downgrade across a metadata change", []FeatureUpdate{{FeatureMetadataVersion, 21, safe}}, "Invalid metadata.version 21. Refusing to perform the requested downgrade because it might delete metadata information.", 27},
		{"unsafe downgrade", []FeatureUpdate{{FeatureMetadataVersion, 21, unsafe}}, "Invalid metadata.version 21. Unsafe metadata downgrade is not supported in this version.", 27},
		{"one bad update fails all", []FeatureUpdate{{FeatureMetadataVersion, 26, safe}, {FeatureGroupVersion, 1, up}}, "Invalid update version 1 for feature group.version. Local controller 1 does not support this feature.", 27},
		{"safe downgrade", []FeatureUpdate{{FeatureMetadataVersion, 24, safe}}, "", 24},
		{"upgrade to a newer version as a downgrade", []FeatureUpdate{{FeatureMetadataVersion, 25, safe}}, "Invalid update version 25 for feature metadata.version. Can't downgrade to a newer version.", 24},
		{"upgrade", []FeatureUpdate{{FeatureMetadataVersion, 27, up}, {FeatureGroupVersion, 0, up}}, "", 27},
		{"disable an unfinalized feature", []FeatureUpdate{{FeatureTransactionVersion, 0, safe}}, "", 27},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.Image().Index()
			err := c.UpdateFeatures(ctx, tc.updates, false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Fatalf("error %v\nwant %s", err, tc.wantErr)
			case tc.wantErr != "" && !errors.Is(err, ErrInvalidUpdateVersion):
				t.Fatalf("error %v does not wrap ErrInvalidUpdateVersion", err)
			case tc.wantErr != "" && c.Image().Index() != before:
				t.Fatalf("a refused update committed an entry")
			}
			if code, _ := ErrorCode(err); tc.wantErr != "" && code != 95 { // INVALID_UPDATE_VERSION
				t.Fatalf("error code %d", code)
			}
			if got := c.Image().MetadataVersion(); got != tc.wantMV {
				t.Fatalf("metadata.version %d, want %d", got, tc.wantMV)
			}
		})
	}
	if f := c.Image().FinalizedFeatures(); len(f) != 1 {
		t.Fatalf("level-0 features are finalized: %v", f)
	}
}

func TestUpdateFeaturesValidateOnly(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, 1)
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	before := c.Image().Index()
	if err := c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, 25, UpgradeTypeSafeDowngrade}}, true); err != nil {
		t.Fatal(err)
	}
	if c.Image().Index() != before || c.Image().MetadataVersion() != LatestMetadataVersion {
		t.Fatal("validate-only committed")
	}
	err := c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, 30, UpgradeTypeUpgrade}}, true)
	if !errors.Is(err, ErrInvalidUpdateVersion) {
		t.Fatalf("validate-only of an unsupported level: %v", err)
	}
	err = c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureGroupVersion, 0, 1}, {FeatureGroupVersion, 0, 1}}, true)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("a feature given twice: %v", err)
	}
}

func TestFeatureLevelRecordApplyAndSnapshot(t *testing.T) {
	im := emptyImage()
	next, err := im.applyBatch(5, []Record{
		&FeatureLevelRecord{Name: FeatureMetadataVersion, Level: 27},
		&FeatureLevelRecord{Name: "x.version", Level: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if im.MetadataVersion() != 0 || len(im.FinalizedFeatures()) != 0 {
		t.Fatal("applying modified the base image")
	}
	next2, err := next.applyBatch(6, []Record{&FeatureLevelRecord{Name: "x.version", Level: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if next.FeatureLevel("x.version") != 2 || next2.FeatureLevel("x.version") != 0 || len(next2.FinalizedFeatures()) != 1 {
		t.Fatalf("levels: %v then %v", next.FinalizedFeatures(), next2.FinalizedFeatures())
	}
	for _, bad := range []*FeatureLevelRecord{{Name: FeatureMetadataVersion, Level: 0}, {Name: "", Level: 1}, {Name: "x", Level: -1}} {
		if _, err := next.applyBatch(7, []Record{bad}); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%+v applied: %v", bad, err)
		}
	}
	// Encode/decode, and a snapshot round trip.
	data, err := EncodeBatch([]Record{&FeatureLevelRecord{Name: FeatureMetadataVersion, Level: 27}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"records":[{"type":"featureLevel","v":1,"name":"metadata.version","level":27}]}`; string(data) != want {
		t.Fatalf("encoded %s", data)
	}
	recs, err := DecodeBatch(data)
	if err != nil || len(recs) != 1 || *recs[0].(*FeatureLevelRecord) != (FeatureLevelRecord{Name: FeatureMetadataVersion, Level: 27}) {
		t.Fatalf("decoded %v, %v", recs, err)
	}
	var buf bytes.Buffer
	if err := next.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	restored, err := readImageJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(restored.FinalizedFeatures(), next.FinalizedFeatures()) {
		t.Fatalf("snapshot: %v, want %v", restored.FinalizedFeatures(), next.FinalizedFeatures())
	}
	// A snapshot written before features existed restores with none.
	old, err := readImageJSON(bytes.NewReader([]byte(`{"v":1,"index":3,"clusterId":"c","brokers":[],"topics":[]}`)))
	if err != nil || old.MetadataVersion() != 0 {
		t.Fatalf("old snapshot: %v, %v", old, err)
	}
}

// TestFeaturesAndBrokerRegistrations: a broker registers the levels its build supports; a
// broker that cannot run the finalized metadata.version is refused (UNSUPPORTED_VERSION), and
// no level is finalized that a registered broker does not support.
func TestFeaturesAndBrokerRegistrations(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, 1)
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	older := map[string]FeatureRange{FeatureMetadataVersion: {7, 25}, FeatureGroupVersion: {0, 0}, FeatureTransactionVersion: {0, 2}}
	r := registration(c, 2, "")
	r.Features = older
	if _, err := c.RegisterBroker(ctx, r); !errors.Is(err, kerr.UnsupportedVersion) ||
		!strings.Contains(err.Error(), "Unable to register because the broker does not support finalized version 27 of metadata.version. The broker wants a version between 7 and 25, inclusive.") {
		t.Fatalf("registration below the finalized metadata.version: %v", err)
	}
	if err := c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, 25, UpgradeTypeSafeDowngrade}}, false); err != nil {
		t.Fatal(err)
	}
	r.IncarnationID = RandomUUID()
	if _, err := c.RegisterBroker(ctx, r); err != nil {
		t.Fatalf("registration at a supported level: %v", err)
	}
	if b, _ := c.Image().Broker(2); !maps.Equal(b.Features, older) {
		t.Fatalf("registered features %v", b.Features)
	}
	err := c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, 27, UpgradeTypeUpgrade}}, false)
	if err == nil || err.Error() != "Invalid update version 27 for feature metadata.version. Broker 2 only supports versions 7-25" {
		t.Fatalf("upgrade past a broker's range: %v", err)
	}
	// A registration without features (a build before them) is not checked, and holds every
	// feature update: that build cannot decode the FeatureLevelRecord.
	r3 := registration(c, 3, "")
	r3.Features = nil
	if _, err := c.RegisterBroker(ctx, r3); err != nil {
		t.Fatal(err)
	}
	err = c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, 24, UpgradeTypeSafeDowngrade}}, false)
	if err == nil || err.Error() != "Invalid update version 24 for feature metadata.version. Broker 3 does not support this feature." {
		t.Fatalf("update with a broker of an older build registered: %v", err)
	}
}

// A log an older build wrote (no metadata.version, brokers registered without features) gets
// metadata.version only once every registered node runs a build with feature versions; until
// then no record an older build cannot apply is written: moves are refused.
func TestRollingUpgradeFinalizesMetadataVersion(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, 0)
	dirs := map[int32][]UUID{1: {RandomUUID()}, 2: {RandomUUID()}}
	// restart is node id's registration after a restart on its log dirs, by this build or the
	// previous one (nil features).
	restart := func(id int32, features map[string]FeatureRange) {
		r := registration(c, id, "")
		r.LogDirs, r.Features = dirs[id], features
		activateRegistration(t, c, r)
	}
	restart(1, nil)
	restart(2, nil)
	if _, err := c.CreateTopic(ctx, CreateTopic{Name: "r", Partitions: -1, ReplicationFactor: -1,
		Assignments: map[int32][]int32{0: {1}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.ensureClusterID(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if mv := c.Image().MetadataVersion(); mv != 0 {
		t.Fatalf("metadata.version %d written with older builds registered", mv)
	}
	// Node 1 restarts on this build: node 2 still runs the old one.
	restart(1, SupportedFeatures())
	if mv := c.Image().MetadataVersion(); mv != 0 {
		t.Fatalf("metadata.version %d written while node 2 runs an older build", mv)
	}
	index := c.Image().Index()
	errs, err := c.AlterPartitionReassignments(ctx, []Reassignment{{Topic: "r", Partition: 0, Replicas: []int32{2}}})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], kerr.UnsupportedVersion) ||
		!strings.Contains(errs[0].Error(), "kafka-features upgrade --metadata 4.1") {
		t.Fatalf("move during the upgrade: %v %v", errs, err)
	}
	if c.Image().Index() != index {
		t.Fatalf("a refused move wrote an entry (index %d -> %d)", index, c.Image().Index())
	}
	err = c.UpdateFeatures(ctx, []FeatureUpdate{{FeatureMetadataVersion, LatestMetadataVersion, UpgradeTypeUpgrade}}, false)
	if err == nil || !strings.Contains(err.Error(), "Broker 2 does not support this feature.") {
		t.Fatalf("upgrade during the rolling restart: %v", err)
	}
	// Node 2 restarts on this build, but an older build's controller registers it and drops
	// its features: still no metadata.version. The broker sends the same incarnation again
	// (broker.registeredWithoutFeatures) once this build's controller leads, which amends it.
	r2 := registration(c, 2, "")
	r2.LogDirs = dirs[2]
	older := r2
	older.Features = nil
	activateRegistration(t, c, older)
	if mv := c.Image().MetadataVersion(); mv != 0 {
		t.Fatalf("metadata.version %d written with node 2's features dropped", mv)
	}
	epoch := broker(t, c, 2).Epoch
	if got, err := c.RegisterBroker(ctx, r2); err != nil || got != epoch {
		t.Fatalf("amending node 2's registration with its features: epoch %d (want %d), %v", got, epoch, err)
	}
	if b := broker(t, c, 2); !maps.Equal(b.Features, SupportedFeatures()) || b.Fenced {
		t.Fatalf("node 2 after the amendment: %+v", b)
	}
	if mv := c.Image().MetadataVersion(); mv != LatestMetadataVersion {
		t.Fatalf("metadata.version %d after the last node's upgrade, want %d", mv, LatestMetadataVersion)
	}
	errs, err = c.AlterPartitionReassignments(ctx, []Reassignment{{Topic: "r", Partition: 0, Replicas: []int32{2}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("move after the upgrade: %v %v", errs, err)
	}
}
