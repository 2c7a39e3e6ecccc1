package httpapi

import (
	"net/http"
)

type groupsJSON struct {
	Groups []GroupSummary `json:"groups"`
}

func (a *api) groups(w http.ResponseWriter, r *http.Request) {
	g, err := a.b.Groups(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	g = orEmpty(g)
	writeJSON(w, http.StatusOK, groupsJSON{g})
}

// group answers one page of the group's offsets (limit, offset): a group on a 10 000-partition
// topic answers 1 000 of them unless asked for more.
func (a *api) group(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := page(r, 1000, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	g, err := a.b.Group(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	g.OffsetsTotal = len(g.Offsets)
	g.Offsets = orEmpty(g.Offsets[min(offset, len(g.Offsets)):min(offset+limit, len(g.Offsets))])
	g.Topics = orEmpty(g.Topics)
	writeJSON(w, http.StatusOK, g)
}

func (a *api) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := a.b.DeleteGroup(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) groupLag(w http.ResponseWriter, r *http.Request) {
	h, err := a.b.GroupLagHistory(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	h.Samples = orEmpty(h.Samples)
	writeJSON(w, http.StatusOK, h)
}

type resetJSON struct {
	DryRun  bool          `json:"dry_run"`
	Offsets []OffsetReset `json:"offsets"`
}

func (a *api) resetOffsets(w http.ResponseWriter, r *http.Request) {
	var req ResetOffsets
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch req.To {
	case "earliest", "latest":
	case "timestamp":
		if req.Timestamp == nil {
			writeError(w, badRequest("to=timestamp needs timestamp (unix ms)"))
			return
		}
	case "offset":
		if req.Offset == nil {
			writeError(w, badRequest("to=offset needs offset"))
			return
		}
	default:
		writeError(w, badRequest("to %q: one of earliest, latest, timestamp, offset", req.To))
		return
	}
	res, err := a.b.ResetOffsets(r.Context(), r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	res = orEmpty(res)
	writeJSON(w, http.StatusOK, resetJSON{DryRun: req.DryRun, Offsets: res})
}

type reassignmentsJSON struct {
	Reassignments []Reassignment `json:"reassignments"`
}

func (a *api) reassignments(w http.ResponseWriter, r *http.Request) {
	rs, err := a.b.Reassignments(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	rs = orEmpty(rs)
	writeJSON(w, http.StatusOK, reassignmentsJSON{rs})
}

type resultsJSON struct {
	Results []PartitionResult `json:"results"`
}

func writeResults(w http.ResponseWriter, res []PartitionResult, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	res = orEmpty(res)
	writeJSON(w, http.StatusOK, resultsJSON{res})
}

func (a *api) reassign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Partitions []PartitionReplicas `json:"partitions"`
	}
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Partitions) == 0 {
		writeError(w, badRequest("partitions is empty"))
		return
	}
	for _, p := range req.Partitions {
		if len(p.Replicas) == 0 {
			writeError(w, badRequest("%s-%d: replicas is empty", p.Topic, p.Partition))
			return
		}
	}
	res, err := a.b.Reassign(r.Context(), req.Partitions)
	writeResults(w, res, err)
}

func (a *api) cancelReassignments(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Partitions []TopicPartition `json:"partitions"`
	}
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Partitions) == 0 {
		writeError(w, badRequest("partitions is empty"))
		return
	}
	res, err := a.b.CancelReassignments(r.Context(), req.Partitions)
	writeResults(w, res, err)
}

func (a *api) electLeaders(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Type       string           `json:"type"`
		Partitions []TopicPartition `json:"partitions"`
	}
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var unclean bool
	switch req.Type {
	case "", "preferred":
	case "unclean":
		unclean = true
	default:
		writeError(w, badRequest("type %q: preferred or unclean", req.Type))
		return
	}
	res, err := a.b.ElectLeaders(r.Context(), unclean, req.Partitions)
	writeResults(w, res, err)
}
