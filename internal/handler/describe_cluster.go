package handler

// DescribeCluster: v0-1.
//
// The cluster id, the controller and the brokers (v1: EndpointType 1 = brokers; controllers are
// not listed separately because every Moldau node serves clients). Each broker is given with its
// endpoint on the listener the request arrived on.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.DescribeCluster, 0, 2, (*Handler).handleDescribeCluster) }

func (h *Handler) handleDescribeCluster(_ context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return resp, nil
	}
	im := h.meta.Image()
	resp.ClusterID = im.ClusterID()
	resp.ControllerID = h.meta.ControllerID() // the raft leader; -1 while none is elected
	resp.EndpointType = 1
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
