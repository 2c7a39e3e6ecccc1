// Package metaprops reads, checks and writes meta.properties, the file in every log dir that
// says which cluster and which node its data belongs to, in Kafka's KRaft format (version 1):
//
//	version=1
//	node.id=1
//	cluster.id=<22 base64url characters>
//	directory.id=<22 base64url characters, unique per log dir>
//
// `kafka-storage format -t ID` writes it before the first start; a broker started on empty dirs
// writes it once the cluster id is known (cluster.id, or the one the metadata quorum holds). At
// every start all the files must agree with each other and with the configuration (Ensemble.
// Verify), so a node never serves data of another node id or another cluster. The messages are
// Kafka's (MetaPropertiesEnsemble.verify).
package metaprops

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moldau/moldau/internal/config"
	"github.com/moldau/moldau/internal/log"
	"github.com/moldau/moldau/internal/vfs"
)

// FileName is the name of the file in every log dir, Kafka's.
const FileName = "meta.properties"

// Props is the content of one meta.properties.
type Props struct {
	// Version is 1 (KRaft; node.id) or 0 (ZooKeeper-era; broker.id, cluster.id optional).
	// Moldau writes version 1.
	Version     int
	NodeID      int32  // -1 when the file has none (only possible in version 0)
	ClusterID   string // "" when the file has none (only possible in version 0)
	DirectoryID string // "" when the file has none
}

// Parse decodes meta.properties text.
func Parse(text string) (Props, error) {
	m, err := config.ParseProperties(text)
	if err != nil {
		return Props{}, err
	}
	p := Props{NodeID: -1, ClusterID: m["cluster.id"], DirectoryID: m["directory.id"]}
	switch v := m["version"]; v {
	case "", "0":
		p.Version = 0
	case "1":
		p.Version = 1
	default:
		return Props{}, fmt.Errorf("unknown meta.properties version %q (expected 0 or 1)", v)
	}
	idKey := "node.id"
	if p.Version == 0 {
		idKey = "broker.id"
	}
	if s, ok := m[idKey]; ok {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			return Props{}, fmt.Errorf("%s %q is not a non-negative integer", idKey, s)
		}
		p.NodeID = int32(n)
	}
	if p.Version == 1 && p.ClusterID == "" {
		return Props{}, errors.New("cluster.id was not specified in the v1 file")
	}
	if p.Version == 1 && p.NodeID < 0 {
		return Props{}, errors.New("node.id was not specified")
	}
	if p.DirectoryID != "" {
		if _, err := ParseUUID(p.DirectoryID); err != nil {
			return Props{}, fmt.Errorf("unable to read directory.id as a Uuid: %v", err)
		}
	}
	return p, nil
}

// Encode is the text of a version 1 meta.properties, keys sorted (as Kafka's tools print them).
func (p Props) Encode() []byte {
	var b strings.Builder
	b.WriteString("#\n#Written by Moldau\n")
	fmt.Fprintf(&b, "cluster.id=%s\n", p.ClusterID)
	if p.DirectoryID != "" {
		fmt.Fprintf(&b, "directory.id=%s\n", p.DirectoryID)
	}
	fmt.Fprintf(&b, "node.id=%d\nversion=1\n", p.NodeID)
	return []byte(b.String())
}

// String is the file's keys and values as Kafka's `kafka-storage info` prints them (a sorted
// Java map): {cluster.id=X, directory.id=Y, node.id=1, version=1}.
func (p Props) String() string {
	var kv []string
	if p.ClusterID != "" {
		kv = append(kv, "cluster.id="+p.ClusterID)
	}
	if p.DirectoryID != "" {
		kv = append(kv, "directory.id="+p.DirectoryID)
	}
	if p.NodeID >= 0 {
		key := "node.id"
		if p.Version == 0 {
			key = "broker.id"
		}
		kv = append(kv, key+"="+strconv.Itoa(int(p.NodeID)))
	}
	kv = append(kv, "version="+strconv.Itoa(p.Version))
	slices.Sort(kv)
	return "{" + strings.Join(kv, ", ") + "}"
}

// Path is the meta.properties path of log dir dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Read reads dir's meta.properties. The error wraps os.ErrNotExist when dir has none.
func Read(fsys vfs.FS, dir string) (Props, error) {
	b, err := vfs.ReadFile(fsys, Path(dir))
	if err != nil {
		return Props{}, fmt.Errorf("read %s: %w", Path(dir), err)
	}
	p, err := Parse(string(b))
	if err != nil {
		return Props{}, fmt.Errorf("%s: %w", Path(dir), err)
	}
	return p, nil
}

// Write makes dir's meta.properties p (version 1), durably: a temp file, fsync, rename, fsync
// of the dir. It creates dir if needed.
func Write(fsys vfs.FS, dir string, p Props) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create log dir %s: %w", dir, err)
	}
	p.Version = 1
	if err := log.WriteFileAtomic(fsys, dir, FileName, p.Encode()); err != nil {
		return fmt.Errorf("error while writing meta.properties file %s: %w", dir, err)
	}
	return nil
}

// Ensemble is the meta.properties of every log dir of a node.
type Ensemble struct {
	fsys  vfs.FS
	dirs  []string         // every log dir, in configuration order
	props map[string]Props // the dirs that have a meta.properties
}

// Load reads the meta.properties of every dir. A dir that does not exist or has no file is
// empty (not formatted); a file that cannot be read or parsed is an error naming it.
func Load(fsys vfs.FS, dirs []string) (*Ensemble, error) {
	e := &Ensemble{fsys: fsys, dirs: slices.Clone(dirs), props: map[string]Props{}}
	for _, d := range dirs {
		p, err := Read(fsys, d)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			e.props[d] = p
		}
	}
	return e, nil
}

// Dirs is every log dir, in the order given to Load.
func (e *Ensemble) Dirs() []string { return slices.Clone(e.dirs) }

// Props returns dir's meta.properties; ok is false when dir has none.
func (e *Ensemble) Props(dir string) (p Props, ok bool) { p, ok = e.props[dir]; return p, ok }

// Empty lists the dirs without a meta.properties, in order.
func (e *Ensemble) Empty() []string {
	var out []string
	for _, d := range e.dirs {
		if _, ok := e.props[d]; !ok {
			out = append(out, d)
		}
	}
	return out
}

// ClusterID is the cluster id of the first formatted dir that has one; "" when none has.
func (e *Ensemble) ClusterID() string {
	for _, d := range e.dirs {
		if p, ok := e.props[d]; ok && p.ClusterID != "" {
			return p.ClusterID
		}
	}
	return ""
}

// Verify checks, as Kafka's MetaPropertiesEnsemble.verify, that every meta.properties has the
// cluster id clusterID and the node id nodeID, and that no two dirs share a directory id.
// clusterID "" means not known yet (the first file's id is then expected of the others), as
// does a negative nodeID.
func (e *Ensemble) Verify(clusterID string, nodeID int32) error {
	seen := map[string]string{}
	for _, d := range e.dirs {
		p, ok := e.props[d]
		if !ok {
			continue
		}
		path := Path(d)
		switch {
		case p.ClusterID == "":
		case clusterID == "":
			clusterID = p.ClusterID
		case p.ClusterID != clusterID:
			return fmt.Errorf("Invalid cluster.id in: %s. Expected %s, but read %s", path, clusterID, p.ClusterID)
		}
		switch {
		case p.NodeID < 0:
		case nodeID < 0:
			nodeID = p.NodeID
		case p.NodeID != nodeID:
			return fmt.Errorf("Stored node id %d doesn't match previous node id %d in %s. If you moved your data, make sure your configured node id matches. If you intend to create a new node, you should remove all data in your data directories.", p.NodeID, nodeID, path)
		}
		if p.DirectoryID != "" {
			if isReservedDirectoryID(p.DirectoryID) {
				return fmt.Errorf("Invalid reserved directory ID %s found in %s", p.DirectoryID, d)
			}
			if prev, dup := seen[p.DirectoryID]; dup {
				return fmt.Errorf("Duplicate directory ID %s found. It was the ID of %s, but also of %s", p.DirectoryID, prev, d)
			}
			seen[p.DirectoryID] = d
		}
	}
	return nil
}

// Complete verifies the ensemble against clusterID and nodeID, then writes a meta.properties
// (version 1, a fresh directory id) into every dir that has none, and a directory id into
// every file without one. It returns the dirs it wrote, in order. clusterID must be known.
func (e *Ensemble) Complete(clusterID string, nodeID int32) ([]string, error) {
	if clusterID == "" || nodeID < 0 {
		return nil, fmt.Errorf("meta.properties: cluster id %q and node id %d must both be known", clusterID, nodeID)
	}
	if err := e.Verify(clusterID, nodeID); err != nil {
		return nil, err
	}
	var written []string
	for _, d := range e.dirs {
		p, ok := e.props[d]
		if ok && p.Version == 1 && p.DirectoryID != "" {
			continue
		}
		if !ok {
			if err := e.Format(d, clusterID, nodeID); err != nil {
				return written, err
			}
			written = append(written, d)
			continue
		}
		if p.ClusterID == "" {
			p.ClusterID = clusterID
		}
		if p.NodeID < 0 {
			p.NodeID = nodeID
		}
		if p.DirectoryID == "" {
			p.DirectoryID = e.newDirectoryID()
		}
		p.Version = 1
		if err := Write(e.fsys, d, p); err != nil {
			return written, err
		}
		e.props[d] = p
		written = append(written, d)
	}
	return written, nil
}

// Format writes a new meta.properties (version 1, a directory id no other dir of the ensemble
// has) into dir, one of the ensemble's dirs. It does not check the other dirs (Verify does).
func (e *Ensemble) Format(dir, clusterID string, nodeID int32) error {
	if !slices.Contains(e.dirs, dir) {
		return fmt.Errorf("meta.properties: %s is not a log dir of this node", dir)
	}
	p := Props{Version: 1, ClusterID: clusterID, NodeID: nodeID, DirectoryID: e.newDirectoryID()}
	if err := Write(e.fsys, dir, p); err != nil {
		return err
	}
	e.props[dir] = p
	return nil
}

// newDirectoryID is a random directory id no dir of the ensemble has.
func (e *Ensemble) newDirectoryID() string {
	for {
		id := RandomUUID()
		if !slices.ContainsFunc(e.dirs, func(d string) bool { return e.props[d].DirectoryID == id }) {
			return id
		}
	}
}

// RandomUUID is a random (version 4) UUID in Kafka's text form, 22 base64url characters, as
// Kafka's Uuid.randomUuid: never one whose text starts with '-' (it could pass for a flag) and
// never one of the reserved ids (zero and the ids below 100, which Kafka keeps for its own
// directory markers).
func RandomUUID() string {
	for {
		var u [16]byte
		if _, err := rand.Read(u[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // crypto/rand.Read never fails on supported platforms
		}
		u[6] = u[6]&0x0f | 0x40 // version 4
		u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
		s := base64.RawURLEncoding.EncodeToString(u[:])
		if strings.HasPrefix(s, "-") || isReservedDirectoryID(s) {
			continue
		}
		return s
	}
}

// ParseUUID decodes Kafka's text form of a UUID (22 base64url characters).
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) > 24 {
		return u, fmt.Errorf("input string with prefix `%s` is too long to be decoded as a base64 UUID", s[:24])
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return u, fmt.Errorf("input string `%s` is not base64url: %v", s, err)
	}
	if len(b) != 16 {
		return u, fmt.Errorf("input string `%s` decoded as %d bytes, which is not equal to the expected 16 bytes of a base64-encoded UUID", s, len(b))
	}
	copy(u[:], b)
	return u, nil
}

// isReservedDirectoryID: Kafka's DirectoryId.reserved, the UUIDs whose high 64 bits are zero
// and whose low 64 bits are below 100 (UNASSIGNED, LOST, MIGRATING, ...).
func isReservedDirectoryID(s string) bool {
	u, err := ParseUUID(s)
	if err != nil {
		return false
	}
	return binary.BigEndian.Uint64(u[:8]) == 0 && binary.BigEndian.Uint64(u[8:]) < 100
}
