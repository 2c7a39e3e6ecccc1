// Command errorref sends one fixed sequence of Kafka requests to a broker, one request at a
// time and without a client's retries, so that the error counts a broker keeps for them (Kafka's
// RequestMetrics ErrorsPerSec, kafka_network_requestmetrics_errors_total on Moldau) can be
// compared between Apache Kafka and Moldau:
//
//	go run ./bench/errorref -brokers 127.0.0.1:9092
//
// It prints each request and the error codes of its answer. Read the broker's counters before
// and after; the differences are the run's.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "the broker")
	topic := flag.String("topic", "errorref", "the topic created (3 partitions)")
	flag.Parse()
	if err := run(*brokers, *topic); err != nil {
		fmt.Fprintln(os.Stderr, "errorref:", err)
		os.Exit(1)
	}
}

func run(brokers, topic string) error {
	// Versions pinned at Kafka 3.0's, so that the requests below mean the same on every broker
	// (topics by name, not by id; kgo otherwise sends the newest version both sides know).
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br := cl.SeedBrokers()[0]
	send := func(name string, req kmsg.Request) (kmsg.Response, error) {
		resp, err := br.Request(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%-40s %v\n", name, codes(resp))
		return resp, nil
	}

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "errorref", "1"
	if _, err := send("ApiVersions", av); err != nil {
		return err
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("errorref-missing")
	md.Topics = append(md.Topics, mt)
	md.AllowAutoTopicCreation = false
	if _, err := send("Metadata (a missing topic)", md); err != nil {
		return err
	}
	create := func() *kmsg.CreateTopicsRequest {
		r := kmsg.NewPtrCreateTopicsRequest()
		r.Version = 7
		r.TimeoutMillis = 10000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = topic, 3, 1
		r.Topics = append(r.Topics, t)
		return r
	}
	if _, err := send("CreateTopics", create()); err != nil {
		return err
	}
	if _, err := send("CreateTopics (again)", create()); err != nil {
		return err
	}
	// The partitions' leaders are known once the metadata says so.
	for {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 12
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		resp, err := md.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		ready := len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) == 3
		for _, p := range resp.Topics[0].Partitions {
			ready = ready && p.ErrorCode == 0 && p.Leader >= 0
		}
		if ready {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("topic %s has no leaders", topic)
		}
		time.Sleep(50 * time.Millisecond)
	}
	produce := func(t string, parts ...int32) *kmsg.ProduceRequest {
		r := kmsg.NewPtrProduceRequest()
		r.Version, r.Acks, r.TimeoutMillis = 9, 1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = t
		for _, p := range parts {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = p
			rp.Records = batch()
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
		return r
	}
	// Three records, one per partition, in one Produce request (kgo encodes the batches).
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.MaxVersions(kversion.V3_0_0()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	var recs []*kgo.Record
	for p := range int32(3) {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("errorref")})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	fmt.Printf("%-40s %v\n", "Produce (3 partitions, by kgo)", "[NONE NONE NONE]")
	if _, err := send("Produce (a missing topic)", produce("errorref-missing", 0)); err != nil {
		return err
	}
	if _, err := send("Produce (partition 7 of 3)", produce(topic, 7)); err != nil {
		return err
	}
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxWaitMillis, f.MinBytes, f.MaxBytes, f.ReplicaID = 12, 0, 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	for p := range int32(3) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = p, 0, 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
	}
	f.Topics = append(f.Topics, ft)
	if _, err := send("Fetch (3 partitions)", f); err != nil {
		return err
	}
	f2 := kmsg.NewPtrFetchRequest()
	f2.Version, f2.MaxWaitMillis, f2.MinBytes, f2.MaxBytes, f2.ReplicaID = 12, 0, 1, 1<<20, -1
	ft2 := kmsg.NewFetchRequestTopic()
	ft2.Topic = topic
	fp2 := kmsg.NewFetchRequestTopicPartition()
	fp2.Partition, fp2.FetchOffset, fp2.PartitionMaxBytes, fp2.CurrentLeaderEpoch, fp2.LogStartOffset = 0, 99, 1<<20, -1, -1
	ft2.Partitions = append(ft2.Partitions, fp2)
	f2.Topics = append(f2.Topics, ft2)
	if _, err := send("Fetch (out of range)", f2); err != nil {
		return err
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version, lo.ReplicaID = 7, -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for p := range int32(3) {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = p, -1, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	if _, err := send("ListOffsets (3 partitions)", lo); err != nil {
		return err
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version, fc.CoordinatorKeys = 4, []string{"errorref-group"}
	if _, err := send("FindCoordinator", fc); err != nil {
		return err
	}
	var coord int32 = -1
	for coord < 0 {
		resp, err := fc.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if c := resp.Coordinators[0]; c.ErrorCode == 0 {
			coord = c.NodeID
		} else if ctx.Err() != nil {
			return fmt.Errorf("no coordinator: %v", kerr.ErrorForCode(c.ErrorCode))
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.Generation, oc.MemberID = 8, "errorref-group", -1, ""
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = topic
	for p := range int32(2) {
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Partition, op.Offset, op.LeaderEpoch = p, 1, -1
		ot.Partitions = append(ot.Partitions, op)
	}
	oc.Topics = append(oc.Topics, ot)
	if _, err := send("OffsetCommit (2 partitions)", oc); err != nil {
		return err
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 8
	og := kmsg.NewOffsetFetchRequestGroup()
	og.Group = "errorref-group"
	ogt := kmsg.NewOffsetFetchRequestGroupTopic()
	ogt.Topic, ogt.Partitions = topic, []int32{0, 1}
	og.Topics = append(og.Topics, ogt)
	of.Groups = append(of.Groups, og)
	if _, err := send("OffsetFetch (1 group, 2 partitions)", of); err != nil {
		return err
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version, dg.Groups = 5, []string{"errorref-group"}
	if _, err := send("DescribeGroups v5 (an empty group)", dg); err != nil {
		return err
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TimeoutMillis, dt.TopicNames = 6, 10000, []string{"errorref-missing"}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("errorref-missing")
	dt.Topics = append(dt.Topics, dtt)
	if _, err := send("DeleteTopics (a missing topic)", dt); err != nil {
		return err
	}
	return nil
}

// batch is one record batch of one record, uncompressed, magic 2.
func batch() []byte {
	var b kmsg.RecordBatch
	b.Magic = 2
	b.FirstTimestamp = time.Now().UnixMilli()
	b.MaxTimestamp = b.FirstTimestamp
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	r := kmsg.NewRecord()
	r.Value = []byte("errorref")
	b.NumRecords = 1
	b.Records = r.AppendTo(nil)
	raw := b.AppendTo(nil)
	// Length counts the bytes after it (from PartitionLeaderEpoch on); the CRC (Castagnoli)
	// covers the bytes after it (from Attributes on).
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// codes are the error codes of resp, as Kafka's errorCounts would count them.
func codes(resp kmsg.Response) []string {
	var out []string
	add := func(c int16) {
		name := "NONE"
		if e := kerr.ErrorForCode(c); e != nil {
			name = e.(*kerr.Error).Message
		}
		out = append(out, name)
	}
	switch r := resp.(type) {
	case *kmsg.ApiVersionsResponse:
		add(r.ErrorCode)
	case *kmsg.MetadataResponse:
		for _, t := range r.Topics {
			add(t.ErrorCode)
			for _, p := range t.Partitions {
				add(p.ErrorCode)
			}
		}
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			add(t.ErrorCode)
		}
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				add(p.ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		add(r.ErrorCode)
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				add(p.ErrorCode)
			}
		}
	case *kmsg.ListOffsetsResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				add(p.ErrorCode)
			}
		}
	case *kmsg.FindCoordinatorResponse:
		for _, c := range r.Coordinators {
			add(c.ErrorCode)
		}
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				add(p.ErrorCode)
			}
		}
	case *kmsg.OffsetFetchResponse:
		for _, g := range r.Groups {
			add(g.ErrorCode)
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					add(p.ErrorCode)
				}
			}
		}
	case *kmsg.DescribeGroupsResponse:
		for _, g := range r.Groups {
			add(g.ErrorCode)
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			add(t.ErrorCode)
		}
	}
	return out
}
