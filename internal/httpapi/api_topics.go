package httpapi

import (
	"encoding/hex"
	"net/http"
	"strings"
)

func (a *api) cluster(w http.ResponseWriter, r *http.Request) {
	c, err := a.b.Cluster(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	c.Version = a.version
	writeJSON(w, http.StatusOK, c)
}

type throughputJSON struct {
	IntervalMs int64              `json:"interval_ms"`
	Samples    []ThroughputSample `json:"samples"`
}

func (a *api) throughput(w http.ResponseWriter, r *http.Request) {
	s := a.b.Throughput()
	s = orEmpty(s)
	writeJSON(w, http.StatusOK, throughputJSON{IntervalMs: 1000, Samples: s})
}

type topicsJSON struct {
	Total  int            `json:"total"`
	Topics []TopicSummary `json:"topics"`
}

// listTopics filters by search (a substring of the name, case-insensitive) and internal, then
// pages; total counts the topics that match.
func (a *api) listTopics(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := page(r, 100, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	internal, internalSet, err := queryBool(r, "internal")
	if err != nil {
		writeError(w, err)
		return
	}
	search := strings.ToLower(r.URL.Query().Get("search"))
	var match []TopicSummary
	for _, t := range a.b.Topics() {
		if internalSet && t.Internal != internal {
			continue
		}
		if search != "" && !strings.Contains(strings.ToLower(t.Name), search) {
			continue
		}
		match = append(match, t)
	}
	out := topicsJSON{Total: len(match), Topics: []TopicSummary{}}
	if offset < len(match) {
		out.Topics = match[offset:min(len(match), offset+limit)]
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) createTopic(w http.ResponseWriter, r *http.Request) {
	var t NewTopic
	if err := readJSON(r, &t); err != nil {
		writeError(w, err)
		return
	}
	if t.Name == "" {
		writeError(w, badRequest("name is required"))
		return
	}
	if err := a.b.CreateTopic(r.Context(), t); err != nil {
		writeError(w, err)
		return
	}
	d, err := a.b.Topic(r.Context(), t.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (a *api) topic(w http.ResponseWriter, r *http.Request) {
	d, err := a.b.Topic(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *api) deleteTopic(w http.ResponseWriter, r *http.Request) {
	if err := a.b.DeleteTopic(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type configsJSON struct {
	Configs []ConfigEntry `json:"configs"`
}

func (a *api) topicConfigs(w http.ResponseWriter, r *http.Request) {
	c, err := a.b.TopicConfigs(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, configsJSON{c})
}

type alterConfigsJSON struct {
	Set    map[string]string `json:"set"`
	Delete []string          `json:"delete"`
}

func (a *api) alterTopicConfigs(w http.ResponseWriter, r *http.Request) {
	var req alterConfigsJSON
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Set) == 0 && len(req.Delete) == 0 {
		writeError(w, badRequest("nothing to change: give set and/or delete"))
		return
	}
	name := r.PathValue("name")
	if err := a.b.AlterTopicConfigs(r.Context(), name, req.Set, req.Delete); err != nil {
		writeError(w, err)
		return
	}
	c, err := a.b.TopicConfigs(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, configsJSON{c})
}

type partitionsJSON struct {
	Total      int             `json:"total"`
	Partitions []PartitionInfo `json:"partitions"`
}

func (a *api) partitions(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := page(r, 1000, 10000)
	if err != nil {
		writeError(w, err)
		return
	}
	total, parts, err := a.b.Partitions(r.Context(), r.PathValue("name"), offset, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	parts = orEmpty(parts)
	writeJSON(w, http.StatusOK, partitionsJSON{total, parts})
}

type produceJSON struct {
	Partition *int32         `json:"partition"`
	Key       *string        `json:"key"`
	Value     *string        `json:"value"`
	Headers   []RecordHeader `json:"headers"`
	Encoding  string         `json:"encoding"` // utf8 (default) or hex: how key, value and header values are written
}

func (a *api) produce(w http.ResponseWriter, r *http.Request) {
	var req produceJSON
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var decode func(string) ([]byte, error)
	switch req.Encoding {
	case "", "utf8":
		decode = func(s string) ([]byte, error) { return []byte(s), nil }
	case "hex":
		decode = hex.DecodeString
	default:
		writeError(w, badRequest("encoding %q: utf8 or hex", req.Encoding))
		return
	}
	var rec ProduceRecord
	rec.Partition = req.Partition
	var err error
	if req.Key != nil {
		if rec.Key, err = decode(*req.Key); err != nil {
			writeError(w, badRequest("key: %v", err))
			return
		}
	}
	if req.Value != nil {
		if rec.Value, err = decode(*req.Value); err != nil {
			writeError(w, badRequest("value: %v", err))
			return
		}
	}
	for _, h := range req.Headers {
		v, err := decode(h.Value)
		if err != nil {
			writeError(w, badRequest("header %q: %v", h.Key, err))
			return
		}
		rec.Headers = append(rec.Headers, ProduceHeader{Key: h.Key, Value: v})
	}
	p, err := a.b.Produce(r.Context(), r.PathValue("name"), rec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}
