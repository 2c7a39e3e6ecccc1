package broker

import (
	"log/slog"
	"testing"
)

// TestAPILogLevelAnswers: PUT /api/v1/log/level changes the process's slog level (the LevelVar the
// broker's logger reads) and GET shows it; a level that is not one of slog's, a body that is not
// JSON and an unknown field answer 400 with the documented error body, and leave the level as
// it was.
func TestAPILogLevelAnswers(t *testing.T) {
	b := testBroker(t, t.TempDir())
	t.Cleanup(func() { stopBroker(t, b) })
	level := new(slog.LevelVar)
	base := apiServer(t, b, level)
	u := base + "/api/v1/log/level"

	var got struct {
		Level string `json:"level"`
	}
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "INFO" {
		t.Fatalf("level %q, want INFO", got.Level)
	}
	mustCall(t, 200, "PUT", u, map[string]string{"level": "debug"}, &got)
	if got.Level != "DEBUG" || level.Level() != slog.LevelDebug {
		t.Fatalf("after PUT debug: answer %q, level %v", got.Level, level.Level())
	}
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "DEBUG" {
		t.Fatalf("GET after PUT debug: %q", got.Level)
	}
	e := wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, map[string]string{"level": "chatty"})
	if e.Error.Message == "" {
		t.Fatal("error without a message")
	}
	wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, "not an object")
	wantError(t, 400, "BAD_REQUEST", 0, "PUT", u, map[string]string{"levle": "info"})
	if level.Level() != slog.LevelDebug {
		t.Fatalf("a refused PUT changed the level to %v", level.Level())
	}
	mustCall(t, 200, "PUT", u, map[string]string{"level": "INFO"}, &got)
	mustCall(t, 200, "GET", u, nil, &got)
	if got.Level != "INFO" || level.Level() != slog.LevelInfo {
		t.Fatalf("back to info: answer %q, level %v", got.Level, level.Level())
	}
}

// TestAPIErrorAnswersMore: the documented error body ({"error": {code, kafka_code, message}})
// on the paths TestAPIErrorAnswers leaves out: an unknown group (404, GROUP_ID_NOT_FOUND, 69),
// altering the configs of an unknown topic (404, 3), an empty config change, a name missing
// from a create, a limit that is not a number (400 BAD_REQUEST, 0) and a path the API does not
// have (404 NOT_FOUND, 0).
func TestAPIErrorAnswersMore(t *testing.T) {
	_, base := apiBroker(t)
	v1 := base + "/api/v1"
	mustCall(t, 201, "POST", v1+"/topics", map[string]any{"name": "here", "partitions": 1}, nil)
	wantError(t, 404, "UNKNOWN_TOPIC_OR_PARTITION", 3, "PATCH", v1+"/topics/nope/configs", map[string]any{"set": map[string]string{"retention.ms": "1000"}})
	wantError(t, 404, "GROUP_ID_NOT_FOUND", 69, "GET", v1+"/groups/nobody", nil)
	wantError(t, 400, "BAD_REQUEST", 0, "POST", v1+"/topics", map[string]any{"partitions": 1})
	wantError(t, 400, "BAD_REQUEST", 0, "PATCH", v1+"/topics/here/configs", map[string]any{})
	wantError(t, 400, "BAD_REQUEST", 0, "GET", v1+"/topics?limit=x", nil)
	e := wantError(t, 404, "NOT_FOUND", 0, "GET", v1+"/nothing/here", nil)
	if e.Error.Message == "" {
		t.Fatal("NOT_FOUND without a message")
	}
}
