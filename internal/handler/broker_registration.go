package handler

// BrokerRegistration: v0-4, BrokerHeartbeat: v0-1. Broker -> controller, on the CONTROLLER
// listener only: a broker registers an incarnation with its endpoints and rack and gets a broker
// epoch (the offset of its registration record), then heartbeats every
// broker.heartbeat.interval.ms with the metadata offset it has applied; the answer says whether
// it is caught up, fenced, or may finish a controlled shutdown (metadata/lifecycle.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() {
	registerController(kmsg.BrokerRegistration, 0, 4, (*Handler).handleBrokerRegistration)
	registerController(kmsg.BrokerHeartbeat, 0, 1, (*Handler).handleBrokerHeartbeat)
}

func (h *Handler) handleBrokerRegistration(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.BrokerRegistrationRequest)
	resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	reg := metadata.BrokerRegistration{NodeID: r.BrokerID, ClusterID: r.ClusterID, IncarnationID: r.IncarnationID,
		PreviousBrokerEpoch: r.PreviousBrokerEpoch}
	if r.Version < 3 {
		reg.PreviousBrokerEpoch = -1
	}
	for _, l := range r.Listeners {
		reg.Endpoints = append(reg.Endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: l.SecurityProtocol})
	}
	if r.Rack != nil {
		reg.Rack = *r.Rack
	}
	for _, d := range r.LogDirs {
		reg.LogDirs = append(reg.LogDirs, d)
	}
	for _, f := range r.Features {
		if reg.Features == nil {
			reg.Features = map[string]metadata.FeatureRange{}
		}
		reg.Features[f.Name] = metadata.FeatureRange{Min: f.MinSupportedVersion, Max: f.MaxSupportedVersion}
	}
	epoch, err := h.meta.RegisterBroker(ctx, reg)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.BrokerEpoch = epoch
	return resp, nil
}

func (h *Handler) handleBrokerHeartbeat(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.BrokerHeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	offset := r.CurrentMetadataOffset
	if offset < 0 {
		offset = 0
	}
	res, err := h.meta.BrokerHeartbeat(ctx, metadata.Heartbeat{NodeID: r.BrokerID, Epoch: r.BrokerEpoch,
		MetadataOffset: uint64(offset), WantFence: r.WantFence, WantShutdown: r.WantShutdown})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = res.IsCaughtUp, res.IsFenced, res.ShouldShutdown
	return resp, nil
}
