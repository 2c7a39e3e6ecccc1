package handler

// UpdateFeatures: v0-2.
//
// Changes finalized feature levels (metadata.version, ...) through the Controller, which validates
// them as Kafka's FeatureControlManager and runs on the raft leader (forwarded from any other
// node). v0 says AllowDowngrade (a safe downgrade), v1+ the UpgradeType. As Kafka, a refusal of
// any feature fails the whole request: the top-level error carries it and Results is empty; on
// success v0-1 list every feature with no error (v2 has no Results).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.UpdateFeatures, 0, 2, (*Handler).handleUpdateFeatures) }

func (h *Handler) handleUpdateFeatures(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.UpdateFeaturesRequest)
	resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	updates := make([]metadata.FeatureUpdate, 0, len(r.FeatureUpdates))
	for _, fu := range r.FeatureUpdates {
		u := metadata.FeatureUpdate{Name: fu.Feature, Level: fu.MaxVersionLevel, UpgradeType: fu.UpgradeType}
		if r.Version == 0 {
			u.UpgradeType = metadata.UpgradeTypeUpgrade
			if fu.AllowDowngrade {
				u.UpgradeType = metadata.UpgradeTypeSafeDowngrade
			}
		}
		updates = append(updates, u)
	}
	if err := h.meta.UpdateFeatures(ctx, updates, r.ValidateOnly); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	if r.Version <= 1 {
		for _, u := range updates {
			res := kmsg.NewUpdateFeaturesResponseResult()
			res.Feature = u.Name
			resp.Results = append(resp.Results, res)
		}
	}
	return resp, nil
}
