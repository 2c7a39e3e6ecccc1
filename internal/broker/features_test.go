package broker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/moldau/moldau/internal/metadata"
)

// TestClusterUpdateFeatures: a new cluster finalizes metadata.version at this build's latest; an
// UpdateFeatures sent to a node that is not the raft leader is forwarded there, validated on the
// leader's image with Kafka's errors, and every node's ApiVersions shows the new level.
func TestClusterUpdateFeatures(t *testing.T) {
	brokers := testCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitCluster(t, brokers, "metadata.version finalized everywhere", func(b *Broker) bool {
		return b.Controller().Image().MetadataVersion() == metadata.LatestMetadataVersion
	})
	var follower *Broker
	for _, b := range brokers {
		if !b.Controller().IsController() {
			follower = b
			break
		}
	}
	cl := client(t, follower)

	update := func(level int16, upgradeType int8) *kmsg.UpdateFeaturesResponse {
		t.Helper()
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.TimeoutMillis = 10000
		fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = metadata.FeatureMetadataVersion, level, upgradeType
		req.FeatureUpdates = append(req.FeatureUpdates, fu)
		// To the follower itself (kgo would route an admin request to the controller).
		raw, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return raw.(*kmsg.UpdateFeaturesResponse)
	}
	resp := update(28, metadata.UpgradeTypeUpgrade)
	if resp.ErrorCode != kerr.InvalidUpdateVersion.Code || resp.ErrorMessage == nil ||
		!strings.HasPrefix(*resp.ErrorMessage, "Invalid update version 28 for feature metadata.version. Local controller ") ||
		!strings.HasSuffix(*resp.ErrorMessage, " only supports versions 7-27") || len(resp.Results) != 0 {
		t.Fatalf("upgrade past the supported range: %d %v %v", resp.ErrorCode, resp.ErrorMessage, resp.Results)
	}
	resp = update(25, metadata.UpgradeTypeSafeDowngrade)
	if resp.ErrorCode != 0 {
		t.Fatalf("safe downgrade: %d %v", resp.ErrorCode, *resp.ErrorMessage)
	}
	// The forwarding node answered after applying the leader's commit.
	if got := follower.Controller().Image().MetadataVersion(); got != 25 {
		t.Fatalf("forwarding node at metadata.version %d after the answer", got)
	}
	waitCluster(t, brokers, "metadata.version 25 everywhere", func(b *Broker) bool {
		return b.Controller().Image().MetadataVersion() == 25
	})

	for _, version := range []int16{3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = version
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		for _, b := range brokers {
			max := kversion.Stable()
			max.SetMaxKeyVersion(kmsg.ApiVersions.Int16(), version)
			raw, err := client(t, b, kgo.MaxVersions(max)).SeedBrokers()[0].Request(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			av := raw.(*kmsg.ApiVersionsResponse)
			if av.Version != version {
				t.Fatalf("asked v%d, answered v%d", version, av.Version)
			}
			var supported []string
			for _, f := range av.SupportedFeatures {
				supported = append(supported, f.Name)
			}
			want := "metadata.version"
			if version >= 4 {
				want = "group.version,kraft.version,metadata.version,transaction.version"
			}
			if strings.Join(supported, ",") != want {
				t.Errorf("v%d node %d: supported %v, want %s", version, b.cfg.NodeID, supported, want)
			}
			// The new cluster finalized transaction.version 2 (KIP-890 part 2) with metadata.version.
			if len(av.FinalizedFeatures) != 2 || av.FinalizedFeatures[0].Name != "metadata.version" ||
				av.FinalizedFeatures[0].MaxVersionLevel != 25 || av.FinalizedFeatures[0].MinVersionLevel != 25 ||
				av.FinalizedFeatures[1].Name != "transaction.version" || av.FinalizedFeatures[1].MaxVersionLevel != 2 {
				t.Errorf("v%d node %d: finalized %+v", version, b.cfg.NodeID, av.FinalizedFeatures)
			}
			if av.FinalizedFeaturesEpoch <= 0 {
				t.Errorf("v%d node %d: epoch %d", version, b.cfg.NodeID, av.FinalizedFeaturesEpoch)
			}
		}
	}
}

// TestClusterDescribeClusterControllers: on the CONTROLLER listener DescribeCluster with
// EndpointType 2 lists the voters at their controller addresses (what Kafka's tools do with
// --bootstrap-controller); a client listener refuses it as Kafka's brokers do.
func TestClusterDescribeClusterControllers(t *testing.T) {
	brokers := testCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v := brokers[1].cfg.ControllerQuorumVoters
	ctrlAddr := func(id int32) string {
		for _, voter := range v {
			if voter.ID == id {
				return net.JoinHostPort(voter.Host, strconv.Itoa(voter.Port))
			}
		}
		t.Fatalf("no voter %d", id)
		return ""
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(ctrlAddr(2)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.EndpointType = 2
	raw, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	resp := raw.(*kmsg.DescribeClusterResponse)
	if resp.ErrorCode != 0 || resp.EndpointType != 2 || len(resp.Brokers) != 3 || resp.ControllerID < 1 {
		t.Fatalf("controllers: %+v", resp)
	}
	for i, b := range resp.Brokers {
		if b.NodeID != int32(i+1) || net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) != ctrlAddr(b.NodeID) {
			t.Errorf("controller %d: %s:%d, want %s", b.NodeID, b.Host, b.Port, ctrlAddr(b.NodeID))
		}
	}
	// The request on node 2's controller listener is in its request metrics (the client never
	// sent one to a client listener yet), and the connection in CONTROLLER's socket metrics.
	for _, b := range brokers {
		if b.cfg.NodeID != 2 {
			continue
		}
		// The request is counted once its response is written, which may be just after the
		// client read it: wait for the count.
		var described, conns float64
		waitFor(t, "node 2's metrics of its controller listener", func() bool {
			fams := scrape(t, b)
			described = fams.sum("kafka_network_requestmetrics_requests_total", map[string]string{"request": "DescribeCluster"})
			conns = fams.sum("kafka_server_socket_server_metrics_connection_creation_total", map[string]string{"listener": controllerListenerName(b.cfg)})
			return described >= 1 && conns >= 1
		}, func() string {
			return fmt.Sprintf("%v DescribeCluster requests counted, %v connections on %s; want the controller listener's in both",
				described, conns, controllerListenerName(b.cfg))
		})
	}
	raw, err = client(t, brokers[1]).SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if code := raw.(*kmsg.DescribeClusterResponse).ErrorCode; code != kerr.UnsupportedEndpointType.Code {
		t.Fatalf("controllers on a client listener: code %d", code)
	}
}
