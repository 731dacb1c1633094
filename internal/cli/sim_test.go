package cli

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSimCommand starts `kitewatch sim` on a free port, reads its address
// and tokens from the output, calls the simulated API with the good token,
// then stops it like Ctrl-C does.
func TestSimCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sim", "--addr", "127.0.0.1:0"}, strings.NewReader(""), pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var base, good string
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Buildkite simulator listening on "); ok {
			base = rest
		}
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "good" {
			good = f[1]
		}
		if strings.HasPrefix(line, "Control API:") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if base == "" || !strings.HasPrefix(good, "bkua_") {
		t.Fatalf("sim printed no address or good token (base %q)", base)
	}
	req, _ := http.NewRequest("GET", base+"/v2/access-token", nil)
	req.Header.Set("Authorization", "Bearer "+good)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"scopes"`) || res.Header.Get("RateLimit-Remaining") == "" {
		t.Fatalf("GET /v2/access-token: %d %s", res.StatusCode, body)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("sim exited %d after cancellation", code)
	}
}
