package handler

// DescribeCluster: v0-2.
//
// The cluster id, the controller and the brokers (v1: EndpointType 1 = brokers; v2:
// IncludeFencedBrokers adds the fenced ones, with IsFenced). Each broker is given with its
// endpoint on the listener the request arrived on. On the CONTROLLER listener EndpointType 2
// (controllers, KIP-919, what Kafka's tools send with --bootstrap-controller) lists the raft
// voters at their CONTROLLER addresses; on a client listener it is refused as Kafka's brokers
// refuse it.

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DescribeCluster, 0, 2, (*Handler).handleDescribeCluster) }

// Endpoint types of DescribeCluster v1+.
const (
	endpointTypeBrokers     = 1
	endpointTypeControllers = 2
)

func (h *Handler) handleDescribeCluster(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	im := h.meta.Image()
	resp.ClusterID = im.ClusterID()
	resp.ControllerID = h.meta.ControllerID() // the raft leader; -1 while none is elected
	if r.Version >= 1 && r.EndpointType == endpointTypeControllers && metadata.IsForwarded(ctx) {
		resp.EndpointType = endpointTypeControllers
		voters := h.meta.VoterAddrs()
		if len(voters) == 0 { // a single voter with an in-memory transport: this node
			if b, ok := im.Broker(h.opts.NodeID); ok {
				voters = map[int32]string{h.opts.NodeID: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))}
			}
		}
		for _, id := range slices.Sorted(maps.Keys(voters)) {
			host, portS, err := net.SplitHostPort(voters[id])
			port, perr := strconv.Atoi(portS)
			if err != nil || perr != nil {
				continue
			}
			rb := kmsg.NewDescribeClusterResponseBroker()
			rb.NodeID, rb.Host, rb.Port = id, host, int32(port)
			if b, ok := im.Broker(id); ok && b.Rack != "" {
				rack := b.Rack
				rb.Rack = &rack
			}
			resp.Brokers = append(resp.Brokers, rb)
		}
		return resp, nil
	}
	if r.Version >= 1 && r.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	resp.EndpointType = endpointTypeBrokers
	for _, b := range im.Brokers() {
		if b.Fenced && !r.IncludeFencedBrokers {
			continue // as Kafka: only live brokers unless v2+ asks for the fenced ones too
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		e := h.brokerEndpoint(req, b)
		rb.NodeID, rb.Host, rb.Port, rb.IsFenced = b.NodeID, e.Host, e.Port, b.Fenced
		if b.Rack != "" {
			rack := b.Rack
			rb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
