package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
)

// buildBinary compiles kitewatch once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kitewatch-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kitewatch")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/kitewatch/kitewatch/cmd/kitewatch")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs `kitewatch serve` as a child process.
func startProcess(t *testing.T, bin, dataDir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--addr", addr)
	cmd.Stdout, cmd.Stderr = &syncBuffer{}, &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitReady(t, "http://"+addr)
	return cmd
}

// TestSIGKILLDuringWrites kills the server while clients write, restarts it,
// and checks that every acknowledged write survived and the database is intact.
func TestSIGKILLDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	proc := startProcess(t, bin, dir, addr)
	adminTok, _, _ := seed(t, dir) // admin commands work while the server runs
	base := "http://" + addr

	var acked sync.Map
	var nAcked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				r, err := postNoFatal(base+"/api/v1/user/tokens", adminTok, `{"name":"`+name+`"}`)
				if err != nil {
					return // the server is gone
				}
				if r == 201 {
					acked.Store(name, true)
					nAcked.Add(1)
				}
			}
		}()
	}
	for i := 0; nAcked.Load() < 120 && i < 600; i++ {
		time.Sleep(25 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	close(stop)
	wg.Wait()
	if nAcked.Load() == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}

	startProcess(t, bin, dir, addr)
	r := do(t, "GET", base+"/api/v1/user/tokens", adminTok, nil)
	var list struct {
		Tokens []struct{ Name string } `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(r.Body), &list); err != nil || r.Status != 200 {
		t.Fatalf("list after restart: %d %s", r.Status, r.Body)
	}
	have := map[string]bool{}
	for _, tok := range list.Tokens {
		have[tok.Name] = true
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		if !have[k.(string)] {
			missing++
			t.Errorf("acknowledged write %s lost", k)
		}
		return true
	})
	t.Logf("%d writes acknowledged before SIGKILL, %d lost", nAcked.Load(), missing)

	db, err := sqlite.Open(context.Background(), filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.Writer().QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check = %q, %v", res, err)
	}
}

func postNoFatal(url, token, body string) (int, error) {
	req, err := newJSONRequest(url, token, body)
	if err != nil {
		return 0, err
	}
	res, err := clientNoKeepAlive.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// TestSIGTERMDrainsAndExitsZero checks the graceful shutdown of the binary.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	proc := startProcess(t, bin, dir, addr)
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("kitewatch serve after SIGTERM: %v (want exit 0)\n%s", err, proc.Stderr)
	}
	if !strings.Contains(proc.Stderr.(*syncBuffer).String(), "shutting down") {
		t.Fatalf("no shutdown message in logs: %s", proc.Stderr)
	}
}
