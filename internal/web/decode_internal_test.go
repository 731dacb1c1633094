package web

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMalformedBodiesSayWhy checks that a body decodeJSON refuses is a 400
// whose message names the problem, and never echoes the values sent.
func TestMalformedBodiesSayWhy(t *testing.T) {
	for _, c := range []struct {
		name, ctype, body, says string
	}{
		{"wrong content type", "text/plain", `{"name":"x"}`, "send Content-Type: application/json"},
		{"syntax", "application/json", `{"name": kw_secretvalue`, "syntax error"},
		{"unknown field", "application/json", `{"nmae":"kw_secretvalue"}`, `unknown field "nmae"`},
		{"wrong type", "application/json", `{"name":42}`, "field name has the wrong type"},
		{"empty", "application/json", ``, "empty body"},
		{"trailing data", "application/json", `{"name":"x"} {}`, "data after the JSON object"},
	} {
		r := httptest.NewRequest("POST", "/api/v1/user/tokens", strings.NewReader(c.body))
		r.Header.Set("Content-Type", c.ctype)
		var in struct {
			Name string `json:"name"`
		}
		err := decodeJSON(r, &in)
		status, code, msg := errorStatus(err)
		if status != 400 || code != "malformed_request" || !strings.Contains(msg, c.says) || strings.Contains(msg, "secretvalue") {
			t.Errorf("%s: %d %s %q, want 400 malformed_request saying %q", c.name, status, code, msg, c.says)
		}
	}
}
