package metaprops

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moldau/moldau/internal/vfs"
)

// kafkaFile is a meta.properties as Kafka 4's kafka-storage format writes it
// (java.util.Properties.store: a comment, the date, unsorted keys).
const kafkaFile = `#
#Tue Dec 01 22:00:00 UTC 2026
node.id=1
directory.id=pT4sbvQ2TZKMPG4rsqDyOQ
version=1
cluster.id=4L6g3nShT-eMCtK--X86sw
`

func TestParseKafkaFile(t *testing.T) {
	p, err := Parse(kafkaFile)
	if err != nil {
		t.Fatal(err)
	}
	want := Props{Version: 1, NodeID: 1, ClusterID: "4L6g3nShT-eMCtK--X86sw", DirectoryID: "pT4sbvQ2TZKMPG4rsqDyOQ"}
	if p != want {
		t.Errorf("Parse = %+v, want %+v", p, want)
	}
	if got := p.String(); got != "{cluster.id=4L6g3nShT-eMCtK--X86sw, directory.id=pT4sbvQ2TZKMPG4rsqDyOQ, node.id=1, version=1}" {
		t.Errorf("String = %s", got)
	}
	// What Moldau writes, Kafka's parser (and ours) reads back the same.
	back, err := Parse(string(p.Encode()))
	if err != nil || back != p {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	v0, err := Parse("broker.id=3\ncluster.id=abc\n")
	if err != nil || v0.Version != 0 || v0.NodeID != 3 || v0.ClusterID != "abc" {
		t.Errorf("version 0: %+v, %v", v0, err)
	}
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"version=2\nnode.id=1\ncluster.id=x\n":                                               `unknown meta.properties version "2"`,
		"version=1\nnode.id=1\n":                                                             "cluster.id was not specified in the v1 file",
		"version=1\ncluster.id=x\n":                                                          "node.id was not specified",
		"version=1\nnode.id=-4\ncluster.id=x\n":                                              `node.id "-4" is not a non-negative integer`,
		"version=1\nnode.id=1\ncluster.id=x\ndirectory.id=short\n":                           "unable to read directory.id as a Uuid",
		"version=1\nnode.id=one\ncluster.id=x\ndirectory.id=short\n":                         `node.id "one" is not a non-negative integer`,
		"version=1\nnode.id=1\ncluster.id=x\ndirectory.id=\\uZZZZ\n":                         `malformed \uxxxx escape`,
		"version=1\nnode.id=1\ncluster.id=x\ndirectory.id=" + strings.Repeat("A", 30) + "\n": "too long to be decoded",
	} {
		if _, err := Parse(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", text, err, want)
		}
	}
}

func TestRandomUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := RandomUUID()
		if len(id) != 22 || strings.HasPrefix(id, "-") || seen[id] {
			t.Fatalf("RandomUUID = %q (seen %v)", id, seen[id])
		}
		if _, err := ParseUUID(id); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
	}
	if !isReservedDirectoryID("AAAAAAAAAAAAAAAAAAAAAA") || !isReservedDirectoryID("AAAAAAAAAAAAAAAAAAAAAQ") || isReservedDirectoryID("pT4sbvQ2TZKMPG4rsqDyOQ") {
		t.Error("reserved directory ids")
	}
}

// TestCompleteThenVerify: a fresh node's dirs get one file each, same cluster and node id,
// distinct directory ids; loaded again they verify, and refuse another node or cluster id
// with Kafka's messages naming the file and both ids.
func TestCompleteThenVerify(t *testing.T) {
	for _, fsys := range []vfs.FS{vfs.Default, vfs.NewMem()} {
		root := t.TempDir()
		dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "c")}
		e, err := Load(fsys, dirs)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Empty()) != 3 || e.ClusterID() != "" || e.Verify("", 1) != nil {
			t.Fatalf("fresh: empty %v cluster %q", e.Empty(), e.ClusterID())
		}
		if _, err := e.Complete("", 1); err == nil {
			t.Error("Complete without a cluster id must fail")
		}
		written, err := e.Complete("clusterA", 7)
		if err != nil || len(written) != 3 {
			t.Fatalf("Complete: %v %v", written, err)
		}
		e, err = Load(fsys, dirs)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, d := range dirs {
			p, ok := e.Props(d)
			if !ok || p.Version != 1 || p.NodeID != 7 || p.ClusterID != "clusterA" || ids[p.DirectoryID] || p.DirectoryID == "" {
				t.Errorf("%s: %+v %v", d, p, ok)
			}
			ids[p.DirectoryID] = true
		}
		if err := e.Verify("clusterA", 7); err != nil {
			t.Error(err)
		}
		if w, err := e.Complete("clusterA", 7); err != nil || len(w) != 0 {
			t.Errorf("Complete again wrote %v, %v; want nothing", w, err)
		}
		err = e.Verify("", 8)
		want := "Stored node id 7 doesn't match previous node id 8 in " + filepath.Join(dirs[0], "meta.properties") + ". If you moved your data"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("other node id: %v\nwant %s", err, want)
		}
		err = e.Verify("clusterB", 7)
		want = "Invalid cluster.id in: " + filepath.Join(dirs[0], "meta.properties") + ". Expected clusterB, but read clusterA"
		if err == nil || err.Error() != want {
			t.Errorf("other cluster id: %v\nwant %s", err, want)
		}
		if _, err := e.Complete("clusterB", 7); err == nil || err.Error() != want {
			t.Errorf("Complete with another cluster id: %v", err)
		}
	}
}

// TestVerifyAcrossDirs: dirs that disagree among themselves are refused, naming the dir that
// disagrees with the first.
func TestVerifyAcrossDirs(t *testing.T) {
	fsys := vfs.NewMem()
	a, b := "/data/a", "/data/b"
	write := func(dir string, p Props) {
		t.Helper()
		if err := Write(fsys, dir, p); err != nil {
			t.Fatal(err)
		}
	}
	load := func() *Ensemble {
		t.Helper()
		e, err := Load(fsys, []string{a, b})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	write(a, Props{NodeID: 1, ClusterID: "X", DirectoryID: "pT4sbvQ2TZKMPG4rsqDyOQ"})
	write(b, Props{NodeID: 1, ClusterID: "Y", DirectoryID: "qT4sbvQ2TZKMPG4rsqDyOQ"})
	if err := load().Verify("", 1); err == nil || err.Error() != "Invalid cluster.id in: /data/b/meta.properties. Expected X, but read Y" {
		t.Errorf("mismatched cluster ids: %v", err)
	}
	write(b, Props{NodeID: 2, ClusterID: "X", DirectoryID: "qT4sbvQ2TZKMPG4rsqDyOQ"})
	if err := load().Verify("", -1); err == nil || !strings.HasPrefix(err.Error(), "Stored node id 2 doesn't match previous node id 1 in /data/b/meta.properties.") {
		t.Errorf("mismatched node ids: %v", err)
	}
	write(b, Props{NodeID: 1, ClusterID: "X", DirectoryID: "pT4sbvQ2TZKMPG4rsqDyOQ"})
	if err := load().Verify("", 1); err == nil || err.Error() != "Duplicate directory ID pT4sbvQ2TZKMPG4rsqDyOQ found. It was the ID of /data/a, but also of /data/b" {
		t.Errorf("duplicate directory ids: %v", err)
	}
	write(b, Props{NodeID: 1, ClusterID: "X", DirectoryID: "AAAAAAAAAAAAAAAAAAAAAA"})
	if err := load().Verify("", 1); err == nil || err.Error() != "Invalid reserved directory ID AAAAAAAAAAAAAAAAAAAAAA found in /data/b" {
		t.Errorf("reserved directory id: %v", err)
	}
	// A file without a directory id (an older writer) gets one from Complete, nothing else changes.
	write(b, Props{NodeID: 1, ClusterID: "X"})
	e := load()
	if w, err := e.Complete("X", 1); err != nil || len(w) != 1 || w[0] != b {
		t.Errorf("Complete: %v, %v", w, err)
	}
	if p, _ := load().Props(b); p.DirectoryID == "" || p.ClusterID != "X" || p.NodeID != 1 {
		t.Errorf("after Complete: %+v", p)
	}
	// A damaged file stops Load, naming it.
	f, err := fsys.Create("/data/b/meta.properties")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("version=9\n"))
	f.Close()
	if _, err := Load(fsys, []string{a, b}); err == nil || !strings.Contains(err.Error(), "/data/b/meta.properties: unknown meta.properties version") {
		t.Errorf("damaged file: %v", err)
	}
}

// TestWriteFailureIsReported: a full disk while writing is an error naming the dir, and the
// file is not left half written.
func TestWriteFailureIsReported(t *testing.T) {
	mem := vfs.NewMem()
	ffs := vfs.NewFaultFS(mem)
	ffs.SetInjector(vfs.OnPrefix("/d", syscall.ENOSPC, vfs.OpWrite))
	err := Write(ffs, "/d", Props{NodeID: 1, ClusterID: "X"})
	if err == nil || !strings.Contains(err.Error(), "error while writing meta.properties file /d") {
		t.Fatalf("Write on a full disk: %v", err)
	}
	if !vfs.IsNoSpace(err) {
		t.Errorf("error %v does not wrap ENOSPC", err)
	}
	if _, err := Read(mem, "/d"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed write: %v, want no file", err)
	}
}
