package bksim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
)

func bigLogScenario(t testing.TB, size int64) *bksim.Scenario {
	t.Helper()
	doc := fmt.Sprintf(`{"version":1,
 "organizations":[{"slug":"acme","name":"Acme"}],
 "users":[{"name":"Ann","email":"ann@acme.test"}],
 "tokens":[{"name":"good","value":"bkua_%s","scopes":["read_build_logs","read_builds"],"organizations":["acme"]}],
 "pipelines":[{"org":"acme","slug":"api","repository":"git@github.com:acme/api.git"}],
 "builds":[{"pipeline":"acme/api","number":1,"state":"failed","branch":"main","jobs":[
   {"key":"big","state":"failed","log":{"generate":{"ecosystem":"go","failure":"test","seed":1,"size":%d}}},
   {"key":"empty","state":"failed","log":{"text":""}}]}]}`, strings.Repeat("a", 40), size)
	sc, err := bksim.ParseScenario("big.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func jobPath(t testing.TB, srv *httptest.Server, key string) string {
	req, _ := http.NewRequest("GET", srv.URL+"/v2/organizations/acme/pipelines/api/builds/1?include_retried_jobs=true", nil)
	req.Header.Set("Authorization", "Bearer bkua_"+strings.Repeat("a", 40))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Job ids are stable name-based UUIDs, but reading them from the build
	// keeps the test honest about what clients see.
	s := string(b)
	i := strings.Index(s, `"step_key":"`+key+`"`)
	j := strings.LastIndex(s[:i], `"id":"`)
	id := s[j+6 : j+42]
	return "/v2/organizations/acme/pipelines/api/builds/1/jobs/" + id + "/log"
}

func logReq(t testing.TB, srv *httptest.Server, method, path string, hdr ...string) (*http.Response, int64) {
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer bkua_"+strings.Repeat("a", 40))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	return resp, n
}

func TestLogRangeAndHead(t *testing.T) {
	sim := bksim.New(bigLogScenario(t, 1<<20))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	big, empty := jobPath(t, srv, "big"), jobPath(t, srv, "empty")
	resp, _ := logReq(t, srv, "HEAD", big)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != strconv.Itoa(1<<20) {
		t.Fatalf("HEAD: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
	tests := []struct {
		name, path, rng, accept string
		status                  int
		contentRange            string
		n                       int64
	}{
		{"tail", big, "bytes=-100", "text/plain", 206, fmt.Sprintf("bytes %d-%d/%d", 1<<20-100, 1<<20-1, 1<<20), 100},
		{"tail via .txt", big + ".txt", "bytes=-100", "", 206, fmt.Sprintf("bytes %d-%d/%d", 1<<20-100, 1<<20-1, 1<<20), 100},
		{"tail longer than log", big, "bytes=-99999999", "text/plain", 206, fmt.Sprintf("bytes 0-%d/%d", 1<<20-1, 1<<20), 1 << 20},
		{"explicit range", big, "bytes=0-10", "text/plain", 400, "", -1},
		{"multipart", big, "bytes=-1,-2", "text/plain", 400, "", -1},
		{"zero suffix", big, "bytes=-0", "text/plain", 400, "", -1},
		{"no text accept", big, "bytes=-10", "application/json", 400, "", -1},
		{"empty log", empty, "bytes=-10", "text/plain", 416, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, n := logReq(t, srv, "GET", tt.path, "Range", tt.rng, "Accept", tt.accept)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.contentRange != "" && resp.Header.Get("Content-Range") != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), tt.contentRange)
			}
			if tt.n >= 0 && n != tt.n {
				t.Errorf("body %d bytes, want %d", n, tt.n)
			}
		})
	}
}

// streamHeap streams path and reports the peak heap growth seen while doing so.
func streamHeap(t testing.TB, srv *httptest.Server, path string, hdr ...string) (peak uint64, n int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var max atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > max.Load() {
				max.Store(m.HeapAlloc - base)
			}
		}
	}()
	_, n = logReq(t, srv, "GET", path, hdr...)
	close(stop)
	wg.Wait()
	return max.Load(), n
}

// TestLargeLogBoundedMemory streams a generated 500 MB log through the .txt
// endpoint and as a Range tail and checks the heap never grows by more than
// a small fraction of the log.
func TestLargeLogBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GB in all")
	}
	const size = 500 << 20
	sim := bksim.New(bigLogScenario(t, size))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	path := jobPath(t, srv, "big")
	peak, n := streamHeap(t, srv, path+".txt")
	if n != size {
		t.Fatalf("streamed %d bytes, want %d", n, size)
	}
	if peak > 64<<20 {
		t.Errorf(".txt: heap grew by %d MB while streaming 500 MB", peak>>20)
	}
	peak, n = streamHeap(t, srv, path, "Accept", "text/plain", "Range", "bytes=-65536")
	if n != 65536 || peak > 64<<20 {
		t.Errorf("tail: %d bytes, heap grew by %d MB", n, peak>>20)
	}
	t.Logf("peak heap growth %d KB", peak>>10)
}

// BenchmarkLargeLog reports throughput and peak heap growth for 500 MB logs
// served as .txt, as a 64 KiB tail, and as JSON.
func BenchmarkLargeLog(b *testing.B) {
	const size = 500 << 20
	sim := bksim.New(bigLogScenario(b, size))
	srv := httptest.NewServer(sim)
	defer srv.Close()
	defer sim.Close()
	path := jobPath(b, srv, "big")
	for _, bc := range []struct {
		name string
		path string
		hdr  []string
	}{
		{"txt", path + ".txt", nil},
		{"tail64k", path, []string{"Accept", "text/plain", "Range", "bytes=-65536"}},
		{"json", path, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var peak uint64
			for b.Loop() {
				p, _ := streamHeap(b, srv, bc.path, bc.hdr...)
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}
