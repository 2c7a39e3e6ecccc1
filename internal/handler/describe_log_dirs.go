package handler

// DescribeLogDirs: v1-4.
//
// Every log dir with the size of each hosted partition (all partitions when Topics is null);
// v4 adds the file system's total and usable bytes. A replica being moved to another log dir
// (AlterReplicaLogDirs) is listed in its old dir and, with IsFuture and the bytes copied so far,
// in the new one.

import (
	"context"
	"sort"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DescribeLogDirs, 1, 4, (*Handler).handleDescribeLogDirs) }

func (h *Handler) handleDescribeLogDirs(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)

	want := func(topic string, p int32) bool { return true }
	if r.Topics != nil {
		set := make(map[string]map[int32]bool)
		for _, t := range r.Topics {
			ps := make(map[int32]bool)
			for _, p := range t.Partitions {
				ps[p] = true
			}
			set[t.Topic] = ps
		}
		want = func(topic string, p int32) bool { return set[topic][p] }
	}

	byDir := make(map[string]map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition)
	for _, p := range h.parts.All() {
		if !want(p.Topic, p.Index) {
			continue
		}
		dir := h.parts.DirOf(p.Topic, p.Index)
		if byDir[dir] == nil {
			byDir[dir] = make(map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition)
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = p.Index
		rp.Size = p.Size()
		byDir[dir][p.Topic] = append(byDir[dir][p.Topic], rp)
	}
	// Replicas being moved here (AlterReplicaLogDirs): the copy, as Kafka's future replicas.
	for _, mv := range h.parts.Moves() {
		if !want(mv.Topic, mv.Partition) {
			continue
		}
		if byDir[mv.Dest] == nil {
			byDir[mv.Dest] = make(map[string][]kmsg.DescribeLogDirsResponseDirTopicPartition)
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition, rp.Size, rp.IsFuture = mv.Partition, mv.Bytes, true
		byDir[mv.Dest][mv.Topic] = append(byDir[mv.Dest][mv.Topic], rp)
	}
	for _, dir := range h.parts.LogDirs() {
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir = dir
		rd.TotalBytes, rd.UsableBytes = -1, -1
		if ld := h.parts.LogDir(dir); ld != nil && ld.Err() != nil {
			rd.ErrorCode = kerr.KafkaStorageError.Code // offline, as Kafka reports it
			resp.Dirs = append(resp.Dirs, rd)
			continue
		}
		var fs syscall.Statfs_t
		if syscall.Statfs(dir, &fs) == nil {
			rd.TotalBytes = int64(fs.Blocks) * int64(fs.Bsize)
			rd.UsableBytes = int64(fs.Bavail) * int64(fs.Bsize)
		}
		topics := make([]string, 0, len(byDir[dir]))
		for t := range byDir[dir] {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			rt := kmsg.NewDescribeLogDirsResponseDirTopic()
			rt.Topic = t
			rt.Partitions = byDir[dir][t]
			sort.SliceStable(rt.Partitions, func(i, j int) bool { return rt.Partitions[i].Partition < rt.Partitions[j].Partition })
			rd.Topics = append(rd.Topics, rt)
		}
		resp.Dirs = append(resp.Dirs, rd)
	}
	return resp, nil
}
