package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

// TestAnalyzeBuildURL analyses a failed demo build through the simulated
// Buildkite API, with the token on standard input.
func TestAnalyzeBuildURL(t *testing.T) {
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(100000, 100000))
	hs := httptest.NewServer(sim)
	defer hs.Close()
	defer sim.Close()
	good := bksim.DemoTokenValue("good")

	req, _ := http.NewRequest("GET", hs.URL+"/v2/organizations/acme/builds?state=failed&per_page=1", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var builds []struct {
		Number   int `json:"number"`
		Pipeline struct {
			Slug string `json:"slug"`
		} `json:"pipeline"`
	}
	if err := json.NewDecoder(res.Body).Decode(&builds); err != nil || len(builds) == 0 {
		t.Fatalf("no failed demo build: %v", err)
	}
	res.Body.Close()
	url := fmt.Sprintf("https://buildkite.com/acme/%s/builds/%d", builds[0].Pipeline.Slug, builds[0].Number)

	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"analyze", "--json", "--api-url", hs.URL, "--token-file", "-", url},
		strings.NewReader(good+"\n"), &out, &errb)
	if code != 0 {
		t.Fatalf("analyze %s: exit %d: %s", url, code, errb.String())
	}
	var doc struct {
		Failed   bool `json:"failed"`
		Failures []struct {
			Category string   `json:"category"`
			Title    string   `json:"title"`
			Excerpt  []string `json:"excerpt"`
		} `json:"failures"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out.String())
	}
	if !doc.Failed || len(doc.Failures) == 0 || doc.Failures[0].Title == "" || len(doc.Failures[0].Excerpt) == 0 {
		t.Fatalf("analysis of %s = %s", url, out.String())
	}
	if strings.Contains(out.String()+errb.String(), good) {
		t.Fatal("token in output")
	}

	// Without a token the command says how to give one.
	t.Setenv("BUILDKITE_API_TOKEN", "")
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"analyze", "--api-url", hs.URL, url}, strings.NewReader(""), &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "--token-file") {
		t.Fatalf("no token: exit %d: %s", code, errb.String())
	}
}
