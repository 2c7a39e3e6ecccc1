package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAdminAPIsAnswered: the admin APIs of a Kafka 4 broker that Moldau has no feature for are
// advertised and answered with Kafka's error for an absent feature or an invalid request, not a
// dropped connection; kadm reports those errors.
func TestAdminAPIsAnswered(t *testing.T) {
	b := testBroker(t, t.TempDir())
	defer stopBroker(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	node := b.cfg.NodeID

	t.Run("ApiVersions", func(t *testing.T) {
		resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		have := map[int16]bool{}
		for _, k := range resp.ApiKeys {
			have[k.ApiKey] = true
		}
		for _, k := range []kmsg.Key{kmsg.DescribeACLs, kmsg.CreateACLs, kmsg.DeleteACLs, kmsg.CreateDelegationToken,
			kmsg.RenewDelegationToken, kmsg.ExpireDelegationToken, kmsg.DescribeDelegationToken, kmsg.ElectLeaders,
			kmsg.AlterPartitionAssignments, kmsg.ListPartitionReassignments, kmsg.DescribeClientQuotas,
			kmsg.AlterClientQuotas, kmsg.DescribeUserSCRAMCredentials, kmsg.AlterUserSCRAMCredentials,
			kmsg.DescribeTransactions, kmsg.ListTransactions, kmsg.DescribeProducers} {
			if !have[k.Int16()] {
				t.Errorf("%s not advertised", k.Name())
			}
		}
	})

	t.Run("ACLs", func(t *testing.T) {
		acl := kadm.NewACLs().Topics("admin").Allow("User:alice").AllowHosts("*").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
		created, err := adm.CreateACLs(ctx, acl)
		if err != nil || len(created) != 1 || !errors.Is(created[0].Err, kerr.SecurityDisabled) || created[0].ErrMessage != "No Authorizer is configured." {
			t.Fatalf("CreateACLs: %v %+v", err, created)
		}
		described, err := adm.DescribeACLs(ctx, acl)
		if err != nil || len(described) != 1 || !errors.Is(described[0].Err, kerr.SecurityDisabled) {
			t.Fatalf("DescribeACLs: %v %+v", err, described)
		}
		deleted, err := adm.DeleteACLs(ctx, acl)
		if err != nil || len(deleted) != 1 || !errors.Is(deleted[0].Err, kerr.SecurityDisabled) {
			t.Fatalf("DeleteACLs: %v %+v", err, deleted)
		}
	})

	t.Run("ElectLeaders", func(t *testing.T) {
		res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"admin": {0: {}, 1: {}, 7: {}}, "nosuch": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range map[int32]error{0: kerr.ElectionNotNeeded, 1: kerr.ElectionNotNeeded, 7: kerr.UnknownTopicOrPartition} {
			if got := res["admin"][p].Err; !errors.Is(got, want) {
				t.Errorf("admin-%d: %v, want %v", p, got, want)
			}
		}
		if got := res["nosuch"][0].Err; !errors.Is(got, kerr.UnknownTopicOrPartition) {
			t.Errorf("nosuch-0: %v", got)
		}
		if res, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, kadm.TopicsSet{"admin": {0: {}}}); err != nil || !errors.Is(res["admin"][0].Err, kerr.ElectionNotNeeded) {
			t.Errorf("unclean election: %v %+v", err, res)
		}
		// All partitions: none needs an election, so none is listed.
		if res, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil); err != nil || len(res) != 0 {
			t.Errorf("all partitions: %v %+v", err, res)
		}
	})

	t.Run("Reassignments", func(t *testing.T) {
		var req kadm.AlterPartitionAssignmentsReq
		req.Assign("admin", 0, []int32{node})     // what it has: nothing to move
		req.Assign("admin", 1, []int32{node, 99}) // no broker 99
		req.Assign("admin", 5, []int32{node})     // no partition 5
		req.Assign("nosuch", 0, []int32{node})    // no topic
		req.CancelAssign("admin", 3)              // no partition 3
		res, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for p, want := range map[int32]error{0: nil, 1: kerr.InvalidReplicaAssignment, 5: kerr.UnknownTopicOrPartition, 3: kerr.UnknownTopicOrPartition} {
			if got := res["admin"][p].Err; !errors.Is(got, want) || (want == nil) != (got == nil) {
				t.Errorf("admin-%d: %v, want %v", p, got, want)
			}
		}
		if got := res["nosuch"][0].Err; !errors.Is(got, kerr.UnknownTopicOrPartition) {
			t.Errorf("nosuch-0: %v", got)
		}
		req = nil
		req.Assign("admin", 0, []int32{node, node})
		req.CancelAssign("admin", 1)
		if res, err = adm.AlterPartitionAssignments(ctx, req); err != nil || !errors.Is(res["admin"][0].Err, kerr.InvalidReplicaAssignment) || !errors.Is(res["admin"][1].Err, kerr.NoReassignmentInProgress) {
			t.Errorf("duplicate broker, cancel: %v %+v", err, res)
		}
		listed, err := adm.ListPartitionReassignments(ctx, nil)
		if err != nil || len(listed) != 0 {
			t.Errorf("ListPartitionReassignments: %v %+v", err, listed)
		}
		if listed, err = adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"admin": {0: {}}}); err != nil || len(listed) != 0 {
			t.Errorf("ListPartitionReassignments admin: %v %+v", err, listed)
		}
	})

	t.Run("ClientQuotas", func(t *testing.T) {
		described, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeAny}})
		if err != nil || len(described) != 0 {
			t.Fatalf("DescribeClientQuotas: %v %+v", err, described)
		}
		if _, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "group", MatchType: kmsg.QuotasMatchTypeAny}}); !errors.Is(err, kerr.InvalidRequest) {
			t.Errorf("unknown entity type: %v", err)
		}
		alice := "alice"
		altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
			{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}},
			{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "no_such_quota", Value: 1}}},
		})
		if err != nil || len(altered) != 2 {
			t.Fatalf("AlterClientQuotas: %v %+v", err, altered)
		}
		for _, a := range altered {
			if !errors.Is(a.Err, kerr.InvalidRequest) || a.ErrMessage == "" {
				t.Errorf("AlterClientQuotas %v: %v %q", a.Entity, a.Err, a.ErrMessage)
			}
		}
	})

	t.Run("SCRAM", func(t *testing.T) {
		all, err := adm.DescribeUserSCRAMs(ctx)
		if err != nil || len(all) != 0 {
			t.Fatalf("DescribeUserSCRAMs: %v %+v", err, all)
		}
		named, err := adm.DescribeUserSCRAMs(ctx, "alice")
		if err != nil || !errors.Is(named["alice"].Err, kerr.ResourceNotFound) {
			t.Fatalf("DescribeUserSCRAMs alice: %v %+v", err, named)
		}
		altered, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}},
			[]kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "secret"}})
		if err != nil {
			t.Fatal(err)
		}
		for user, want := range map[string]error{"alice": kerr.UnsupportedSaslMechanism, "bob": kerr.ResourceNotFound} {
			if got := altered[user].Err; !errors.Is(got, want) {
				t.Errorf("%s: %v, want %v", user, got, want)
			}
		}
		// What kadm refuses before sending: too few iterations, an unknown mechanism, a
		// credential altered twice.
		r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		for _, u := range []struct {
			name       string
			mechanism  int8
			iterations int32
		}{{"carol", 1, 100}, {"dave", 3, 8192}, {"erin", 1, 8192}, {"erin", 1, 8192}} {
			up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			up.Name, up.Mechanism, up.Iterations = u.name, u.mechanism, u.iterations
			up.Salt, up.SaltedPassword = []byte("salt"), []byte("salted")
			r.Upsertions = append(r.Upsertions, up)
		}
		resp, err := r.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int16{"carol": kerr.UnacceptableCredential.Code, "dave": kerr.UnsupportedSaslMechanism.Code, "erin": kerr.DuplicateResource.Code}
		if len(resp.Results) != len(want) {
			t.Fatalf("%d results: %+v", len(resp.Results), resp.Results)
		}
		for _, res := range resp.Results {
			if res.ErrorCode != want[res.User] {
				t.Errorf("%s: %v, want %v", res.User, kerr.ErrorForCode(res.ErrorCode), kerr.ErrorForCode(want[res.User]))
			}
		}
	})

	t.Run("DelegationTokens", func(t *testing.T) {
		created, err := kmsg.NewPtrCreateDelegationTokenRequest().RequestWith(ctx, cl)
		if err != nil || created.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Fatalf("CreateDelegationToken: %v %+v", err, created)
		}
		described, err := kmsg.NewPtrDescribeDelegationTokenRequest().RequestWith(ctx, cl)
		if err != nil || described.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Fatalf("DescribeDelegationToken: %v %+v", err, described)
		}
		renewed, err := kmsg.NewPtrRenewDelegationTokenRequest().RequestWith(ctx, cl)
		if err != nil || renewed.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Fatalf("RenewDelegationToken: %v %+v", err, renewed)
		}
		expired, err := kmsg.NewPtrExpireDelegationTokenRequest().RequestWith(ctx, cl)
		if err != nil || expired.ErrorCode != kerr.DelegationTokenRequestNotAllowed.Code {
			t.Fatalf("ExpireDelegationToken: %v %+v", err, expired)
		}
	})

	t.Run("DescribeProducers", func(t *testing.T) {
		pcl := client(t, b, kgo.DefaultProduceTopic("admin"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var rs []*kgo.Record
		for i := 0; i < 4; i++ {
			rs = append(rs, &kgo.Record{Partition: 1, Value: []byte("v"), Timestamp: time.UnixMilli(int64(1_700_000_000_000 + i))})
		}
		if err := pcl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		res, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"admin": {0: {}, 1: {}}})
		if err != nil {
			t.Fatal(err)
		}
		if p := res["admin"].Partitions[0]; p.Err != nil || len(p.ActiveProducers) != 0 {
			t.Errorf("admin-0: %v %+v", p.Err, p.ActiveProducers)
		}
		p := res["admin"].Partitions[1]
		if p.Err != nil || len(p.ActiveProducers) != 1 {
			t.Fatalf("admin-1: %v %+v", p.Err, p.ActiveProducers)
		}
		for _, ap := range p.ActiveProducers {
			if ap.LastSequence != 3 || ap.LastTimestamp != 1_700_000_000_003 || ap.ProducerID < 0 || ap.CoordinatorEpoch != -1 || ap.CurrentTxnStartOffset != -1 {
				t.Errorf("admin-1 producer %+v", ap)
			}
		}
		// kadm routes by metadata, so a partition that does not exist goes by kmsg.
		r := kmsg.NewPtrDescribeProducersRequest()
		for _, tp := range []struct {
			topic     string
			partition int32
		}{{"admin", 9}, {"nosuch", 0}} {
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = tp.topic, []int32{tp.partition}
			r.Topics = append(r.Topics, rt)
		}
		resp, err := r.RequestWith(ctx, cl.Broker(int(node)))
		if err != nil || len(resp.Topics) != 2 {
			t.Fatalf("DescribeProducers: %v %+v", err, resp)
		}
		for _, rt := range resp.Topics {
			if len(rt.Partitions) != 1 || rt.Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Errorf("%s: %+v", rt.Topic, rt.Partitions)
			}
		}
	})

	t.Run("Transactions", func(t *testing.T) {
		listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
		if err != nil || len(listed) != 0 {
			t.Fatalf("ListTransactions: %v %+v", err, listed)
		}
		r := kmsg.NewPtrListTransactionsRequest()
		r.StateFilters = []string{"Ongoing", "Bogus"}
		resp, err := r.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 || len(resp.UnknownStateFilters) != 1 || resp.UnknownStateFilters[0] != "Bogus" {
			t.Fatalf("ListTransactions with a bogus state: %v %+v", err, resp)
		}
		// Before any transactional id was looked up this node coordinates none.
		d := kmsg.NewPtrDescribeTransactionsRequest()
		d.TransactionalIDs = []string{"tx"}
		dresp, err := d.RequestWith(ctx, cl.Broker(int(node)))
		if err != nil || len(dresp.TransactionStates) != 1 || dresp.TransactionStates[0].ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("DescribeTransactions: %v %+v", err, dresp)
		}
		// kadm looks the coordinator up (which creates __transaction_state): an unknown id.
		deadline := time.Now().Add(15 * time.Second)
		for {
			described, err := adm.DescribeTransactions(ctx, "tx")
			if err == nil && errors.Is(described["tx"].Err, kerr.TransactionalIDNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("DescribeTransactions through the coordinator: %v %+v", err, described)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
