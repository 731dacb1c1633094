package bk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrLogTooLarge is returned by a JobLog reader once the log exceeds the
// client's size cap (WithMaxLogBytes), and by JobLogTail for n over the cap.
var ErrLogTooLarge = errors.New("job log exceeds the size cap")

// jobLogURL builds .../organizations/{org}/pipelines/{p}/builds/{n}/jobs/{id}/log{suffix}.
func (c *Client) jobLogURL(org, pipeline string, build int, jobID, suffix string) string {
	u := *c.base
	u.Path = c.base.Path + "/v2/organizations/" + url.PathEscape(org) +
		"/pipelines/" + url.PathEscape(pipeline) +
		"/builds/" + strconv.Itoa(build) +
		"/jobs/" + url.PathEscape(jobID) + "/log" + suffix
	u.RawPath = ""
	return u.String()
}

// doRaw sends a request for a raw (non-JSON) endpoint and maps error answers
// to the package's error types. On success the caller owns resp.Body.
func (c *Client) doRaw(ctx context.Context, method, rawURL string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.normalise(ctx, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	ae := &APIError{Method: method, Path: req.URL.Path, Status: resp.StatusCode}
	if method != http.MethodHead {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		ae.Message = apiMessage(data)
	}
	return nil, c.normalise(ctx, ae)
}

// apiMessage extracts Buildkite's {"message": ...} from an error body.
func apiMessage(data []byte) string {
	var body struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(data, &body); err == nil && body.Message != "" {
		return body.Message
	}
	return ""
}

// JobLog streams a job's raw log (GET .../jobs/{id}/log.txt, scope
// read_build_logs). The headers must arrive within the call timeout; the
// body must be read within WithLogTimeout, and reading past the size cap
// fails with ErrLogTooLarge. The caller must Close the reader.
func (c *Client) JobLog(ctx context.Context, org, pipeline string, build int, jobID string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, c.logTimeout)
	var headerTimedOut atomic.Bool
	timer := time.AfterFunc(c.timeout, func() {
		headerTimedOut.Store(true)
		cancel()
	})
	resp, err := c.doRaw(ctx, http.MethodGet, c.jobLogURL(org, pipeline, build, jobID, ".txt"),
		http.Header{"Accept": {"text/plain"}})
	stopped := timer.Stop()
	if err != nil || !stopped {
		cancel()
		if resp != nil {
			resp.Body.Close()
		}
		if headerTimedOut.Load() {
			err = &UnreachableError{Reason: ReasonTimeout, Err: fmt.Errorf("no answer within %s", c.timeout)}
		}
		return nil, fmt.Errorf("get job log %s/%s#%d/%s: %w", org, pipeline, build, jobID, err)
	}
	if resp.ContentLength > c.maxLogBytes {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("get job log %s/%s#%d/%s: %d bytes over the %d-byte cap: %w",
			org, pipeline, build, jobID, resp.ContentLength, c.maxLogBytes, ErrLogTooLarge)
	}
	return &cappedBody{rc: resp.Body, left: c.maxLogBytes, cancel: cancel}, nil
}

// cappedBody fails with ErrLogTooLarge once more than its cap has been read.
type cappedBody struct {
	rc     io.ReadCloser
	left   int64
	cancel context.CancelFunc
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, ErrLogTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), ErrLogTooLarge
	}
	return n, err
}

func (b *cappedBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

// JobLogSize returns the size in bytes of a job's stored raw log (HEAD
// .../jobs/{id}/log, Content-Length). A 404 (IsNotFound) means the job has no
// log.
func (c *Client) JobLogSize(ctx context.Context, org, pipeline string, build int, jobID string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.doRaw(ctx, http.MethodHead, c.jobLogURL(org, pipeline, build, jobID, ""), nil)
	if err != nil {
		return 0, fmt.Errorf("get job log size %s/%s#%d/%s: %w", org, pipeline, build, jobID, err)
	}
	resp.Body.Close()
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("get job log size %s/%s#%d/%s: %w", org, pipeline, build, jobID,
			&UnreachableError{Reason: ReasonBadResponse, Err: errors.New("no Content-Length")})
	}
	return resp.ContentLength, nil
}

// JobLogTail returns the last n bytes of a job's raw log (GET with
// "Range: bytes=-n", answered 206). It returns the whole log when it is
// shorter than n, and an empty slice for an empty log (416). n must be
// between 1 and the size cap.
func (c *Client) JobLogTail(ctx context.Context, org, pipeline string, build int, jobID string, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("get job log tail: n must be positive, got %d", n)
	}
	if n > c.maxLogBytes {
		return nil, fmt.Errorf("get job log tail: %d bytes requested: %w", n, ErrLogTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.doRaw(ctx, http.MethodGet, c.jobLogURL(org, pipeline, build, jobID, ""),
		http.Header{"Accept": {"text/plain"}, "Range": {"bytes=-" + strconv.FormatInt(n, 10)}})
	if err != nil {
		if statusOf(err) == http.StatusRequestedRangeNotSatisfiable {
			return []byte{}, nil
		}
		return nil, fmt.Errorf("get job log tail %s/%s#%d/%s: %w", org, pipeline, build, jobID, err)
	}
	defer resp.Body.Close()
	// A server that ignores Range answers 200 with the whole log; keep the tail.
	data, err := readTail(resp.Body, n, resp.StatusCode == http.StatusPartialContent)
	if err != nil {
		return nil, fmt.Errorf("get job log tail %s/%s#%d/%s: %w", org, pipeline, build, jobID, c.normalise(ctx, err))
	}
	return data, nil
}

// readTail reads the last n bytes of r with at most 2n bytes buffered.
func readTail(r io.Reader, n int64, partial bool) ([]byte, error) {
	if partial {
		data, err := io.ReadAll(io.LimitReader(r, n+1))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > n {
			return nil, &UnreachableError{Reason: ReasonBadResponse, Err: errors.New("206 answer longer than the requested range")}
		}
		return data, nil
	}
	buf := make([]byte, 0, 2*n)
	chunk := make([]byte, 32<<10)
	for {
		k, err := r.Read(chunk)
		buf = append(buf, chunk[:k]...)
		if int64(len(buf)) > 2*n {
			buf = append(buf[:0], buf[int64(len(buf))-n:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > n {
		buf = buf[int64(len(buf))-n:]
	}
	return buf, nil
}
