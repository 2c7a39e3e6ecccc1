package handler

// ApiVersions: v0-4.
//
// Advertises exactly the API keys and versions registered by this package, with one exception
// copied from Apache Kafka 4.0 (KAFKA-18659): Produce is advertised from v0 although only v3+ is
// served (a v0-2 request closes the connection). librdkafka releases without the fix for its
// issue #4956 (2.0.2, the one Debian ships, among them) compress with gzip, snappy or lz4 only
// when the broker's Produce range includes v0; otherwise kcat, confluent-kafka-python and the
// other librdkafka bindings silently send those batches uncompressed.
//
// v3+ requests carry the client's software name and version, which Kafka validates
// (INVALID_REQUEST on a mismatch). A request at a version above ours is answered with a v0
// response holding UNSUPPORTED_VERSION and our ApiVersions range (KIP-511), so the client
// retries at a version we speak.
//
// v3+ answers carry the feature levels: SupportedFeatures (this build's ranges; at v3 only those
// with a minimum above 0, as Kafka omits the others for older clients, KAFKA-17492),
// FinalizedFeatures (the levels in this node's metadata image, none at level 0) and
// FinalizedFeaturesEpoch (the image's metadata offset, as a KRaft broker answers; -1 before
// metadata.version is finalized).

import (
	"context"
	"maps"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/moldau/moldau/internal/metadata"
	"github.com/moldau/moldau/internal/server"
)

func init() { register(kmsg.ApiVersions, 0, 4, (*Handler).handleApiVersions) }

// softwareNameRe is Kafka's rule for ClientSoftwareName and ClientSoftwareVersion.
var softwareNameRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func (h *Handler) handleApiVersions(ctx context.Context, req *server.Request) (kmsg.Response, error) {
	r := req.Msg.(*kmsg.ApiVersionsRequest)
	resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
	if r.Version >= 3 && (!softwareNameRe.MatchString(r.ClientSoftwareName) || !softwareNameRe.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	onController := metadata.IsForwarded(ctx)
	for _, a := range sortedAPIs() {
		if a.controllerOnly && !onController {
			continue
		}
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		if a.key == kmsg.Produce.Int16() {
			k.MinVersion = 0 // KAFKA-18659, see above
		}
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	if r.Version >= 3 {
		h.addFeatures(resp)
	}
	return resp, nil
}

// addFeatures fills the feature fields of a v3+ ApiVersions answer.
func (h *Handler) addFeatures(resp *kmsg.ApiVersionsResponse) {
	for _, name := range metadata.SupportedFeatureNames() {
		lo, hi, _ := metadata.SupportedFeatureRange(name)
		if lo == 0 && resp.Version < 4 {
			continue
		}
		f := kmsg.NewApiVersionsResponseSupportedFeature()
		f.Name, f.MinVersion, f.MaxVersion = name, lo, hi
		resp.SupportedFeatures = append(resp.SupportedFeatures, f)
	}
	im := h.meta.Image()
	resp.FinalizedFeaturesEpoch = -1
	if im.MetadataVersion() != 0 {
		resp.FinalizedFeaturesEpoch = int64(im.Index())
	}
	finalized := im.FinalizedFeatures()
	for _, name := range slices.Sorted(maps.Keys(finalized)) {
		f := kmsg.NewApiVersionsResponseFinalizedFeature()
		f.Name, f.MinVersionLevel, f.MaxVersionLevel = name, finalized[name], finalized[name]
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, f)
	}
}

// UnsupportedApiVersions implements server.Handler (KIP-511).
func (h *Handler) UnsupportedApiVersions(req *server.Request) kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	a := apis[kmsg.ApiVersions.Int16()]
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
	resp.ApiKeys = append(resp.ApiKeys, k)
	return resp
}
