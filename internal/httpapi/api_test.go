package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIMatchesRoutes holds openapi.yaml and the mux to each other: every route is a path
// and method of the file, every path and method of the file is routed, and the file served at
// /api/v1/openapi.yaml is the embedded one.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                            `yaml:"openapi"`
		Paths   map[string]map[string]interface{} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %q", doc.OpenAPI)
	}
	var inFile []string
	for path, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				inFile = append(inFile, strings.ToUpper(m)+" "+path)
			}
		}
	}
	var routed []string
	for _, r := range apiRoutes {
		routed = append(routed, r.method+" "+r.path)
	}
	sort.Strings(inFile)
	sort.Strings(routed)
	for _, r := range routed {
		if !slices.Contains(inFile, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, r := range inFile {
		if !slices.Contains(routed, r) {
			t.Errorf("openapi.yaml has %s, which is not routed", r)
		}
	}

	// And the mux answers each route (not the catch-all's NOT_FOUND), with a backend that has
	// nothing: a nil Backend panics in any handler that reaches it, which the server turns into
	// a dropped connection; only the routes that need no backend are exercised for their bodies.
	srv := httptest.NewServer(NewAPI(nil, APIOptions{Level: new(slog.LevelVar)}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(openAPI) {
		t.Fatalf("GET /api/v1/openapi.yaml: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, err = http.Get(srv.URL + "/api/v1/log/level")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"level":"INFO"}` {
		t.Fatalf("GET /api/v1/log/level: %d %s", resp.StatusCode, body)
	}
}

func TestDecodeValue(t *testing.T) {
	for _, c := range []struct {
		in       []byte
		how      string
		enc, txt string
	}{
		{[]byte(`{"a":1}`), "auto", "json", `{"a":1}`},
		{[]byte(` [1,2] `), "auto", "json", ` [1,2] `},
		{[]byte(`42`), "auto", "utf8", `42`}, // a JSON number stays text under auto
		{[]byte(`42`), "json", "json", `42`},
		{[]byte(`{"a":`), "auto", "utf8", `{"a":`},
		{[]byte("héllo"), "auto", "utf8", "héllo"},
		{[]byte{0xff, 0x00}, "auto", "hex", "ff00"},
		{[]byte{0xff, 0x00}, "utf8", "hex", "ff00"},
		{[]byte("abc"), "hex", "hex", "616263"},
		{[]byte{}, "auto", "utf8", ""},
	} {
		v := decodeValue(c.in, c.how)
		if v == nil || v.Encoding != c.enc || v.Text != c.txt {
			t.Errorf("decodeValue(%q, %s) = %+v, want %s %q", c.in, c.how, v, c.enc, c.txt)
		}
	}
	if decodeValue(nil, "auto") != nil {
		t.Error("a null value decodes to non-nil")
	}
}
