package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecover(t *testing.T) {
	const secret = "kw_panicsecretvalue234567abcdefghijklmnopqrstuvwxyzabc"
	tests := []struct {
		name     string
		path     string
		panicVal func() any
		wantType string
		wantBody string
		wantCT   string
		wantMsg  string // runtime errors log their message
	}{
		{"string under api", "/api/v1/orgs/acme", func() any { return "leaked " + secret }, "string",
			internalErrorJSON, "application/json", ""},
		{"error page", "/orgs/acme", func() any { return errors.New("db password=" + secret) }, "*errors.errorString",
			"internal server error\n", "text/plain; charset=utf-8", ""},
		{"runtime error", "/api/x", boundsPanicValue, "runtime.boundsError", internalErrorJSON, "application/json", "index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, buf := newTestLogger()
			h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Set-Cookie", "half=done")
				panic(tt.panicVal())
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", rec.Code)
			}
			if rec.Body.String() != tt.wantBody || rec.Header().Get("Content-Type") != tt.wantCT {
				t.Errorf("body %q (%s), want %q (%s)", rec.Body.String(), rec.Header().Get("Content-Type"), tt.wantBody, tt.wantCT)
			}
			if rec.Header().Get("Set-Cookie") != "" {
				t.Error("headers of the unfinished response were kept")
			}
			out := buf.String()
			if strings.Contains(out, secret) || strings.Contains(rec.Body.String(), secret) {
				t.Fatalf("panic value leaked:\n%s", out)
			}
			lines := logLines(t, out)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1", len(lines))
			}
			l := lines[0]
			if l["panic_type"] != tt.wantType || l["level"] != "ERROR" {
				t.Errorf("panic_type %v level %v, want %s ERROR", l["panic_type"], l["level"], tt.wantType)
			}
			if stack, _ := l["stack"].(string); !strings.Contains(stack, "middleware.TestRecover") {
				t.Errorf("stack does not show the panicking frame: %q", stack)
			}
			msg, _ := l["panic"].(string)
			if tt.wantMsg == "" && msg != "" || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("panic message %q, want %q", msg, tt.wantMsg)
			}
		})
	}
}

func TestRecoverRepanicsAbort(t *testing.T) {
	logger, buf := newTestLogger()
	h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
		}
		if buf.String() != "" {
			t.Errorf("ErrAbortHandler was logged: %s", buf.String())
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestRecoverAfterHeaderAborts(t *testing.T) {
	logger, buf := newTestLogger()
	h := Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		panic("late")
	}))
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	}()
	if rec.Body.String() != "partial" {
		t.Errorf("body %q: the 500 page was appended to a started response", rec.Body.String())
	}
	if !strings.Contains(buf.String(), "panic serving request") {
		t.Error("late panic not logged")
	}
}

func TestRecoverOverRealServer(t *testing.T) {
	logger, _ := newTestLogger()
	srv := httptest.NewServer(Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
}

// boundsPanicValue returns the value of a real index-out-of-range panic.
func boundsPanicValue() (p any) {
	defer func() { p = recover() }()
	var s []int
	i := 3
	_ = s[i]
	return nil
}
