package middleware

import (
	"io"
	"net/http"
)

// StatusRecorder wraps a ResponseWriter to remember the status code and the
// number of body bytes written. It implements http.Flusher and io.ReaderFrom
// and unwraps for http.ResponseController, so streaming responses and
// deadlines keep working through it.
type StatusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

// NewStatusRecorder wraps w.
func NewStatusRecorder(w http.ResponseWriter) *StatusRecorder {
	return &StatusRecorder{ResponseWriter: w}
}

// WriteHeader records the final status and passes it on. Informational 1xx
// codes other than 101 pass through without being recorded.
func (s *StatusRecorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		s.ResponseWriter.WriteHeader(code)
		return
	}
	if !s.wroteHeader {
		s.status = code
		s.wroteHeader = true
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes and implies a 200 status if none was set.
func (s *StatusRecorder) Write(b []byte) (int, error) {
	if !s.wroteHeader {
		s.status = http.StatusOK
		s.wroteHeader = true
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's sendfile path.
func (s *StatusRecorder) ReadFrom(src io.Reader) (int64, error) {
	if !s.wroteHeader {
		s.status = http.StatusOK
		s.wroteHeader = true
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{s.ResponseWriter}, src)
	}
	s.bytes += n
	return n, err
}

// writerOnly hides ReadFrom so io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// Flush sends buffered data to the client, if the underlying writer can.
func (s *StatusRecorder) Flush() {
	if !s.wroteHeader {
		s.status = http.StatusOK
		s.wroteHeader = true
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Status returns the status sent, 200 if only a body was written, or 0 if
// nothing has been written yet (the server will then send 200).
func (s *StatusRecorder) Status() int { return s.status }

// BytesWritten returns the number of body bytes written.
func (s *StatusRecorder) BytesWritten() int64 { return s.bytes }

// WroteHeader reports whether the status line has been sent, after which the
// status can no longer change.
func (s *StatusRecorder) WroteHeader() bool { return s.wroteHeader }
