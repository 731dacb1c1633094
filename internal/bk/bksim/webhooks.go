package bksim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// WebhookEvents are the events the simulator emits (reference §10.1).
var WebhookEvents = []string{"ping", "build.scheduled", "build.running", "build.failing", "build.finished", "job.scheduled", "job.started", "job.finished", "job.activated"}

// WebhookConfig is a configured webhook endpoint. Mode "token" sends the
// token in X-Buildkite-Token; "signature" sends X-Buildkite-Signature. Empty
// Events or Pipelines mean all. Pipelines are "org/slug" or "slug".
// Drop, Duplicate and Reorder misbehave on purpose, to test receivers.
type WebhookConfig struct {
	ID        int      `json:"id"`
	URL       string   `json:"url"`
	Token     string   `json:"token"`
	Mode      string   `json:"mode"`
	Events    []string `json:"events,omitempty"`
	Pipelines []string `json:"pipelines,omitempty"`
	Drop      bool     `json:"drop,omitempty"`
	Duplicate bool     `json:"duplicate,omitempty"`
	Reorder   bool     `json:"reorder,omitempty"`
}

func (c *WebhookConfig) validate() (*WebhookConfig, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook url %q must be an absolute http(s) URL", c.URL)
	}
	if c.Token == "" {
		return nil, errors.New("webhook token must not be empty")
	}
	if c.Mode == "" {
		c.Mode = "token"
	}
	if c.Mode != "token" && c.Mode != "signature" {
		return nil, fmt.Errorf("webhook mode must be token or signature, not %q", c.Mode)
	}
	for _, e := range c.Events {
		if !slices.Contains(WebhookEvents, e) {
			return nil, fmt.Errorf("unknown webhook event %q", e)
		}
	}
	return c, nil
}

// Delivery records one delivery attempt of a webhook. The token is never
// recorded.
type Delivery struct {
	RequestID    string    `json:"request_id"`
	Webhook      int       `json:"webhook"`
	Event        string    `json:"event"`
	Attempt      int       `json:"attempt"`
	Time         time.Time `json:"time"`
	Status       int       `json:"status,omitempty"`
	ResponseBody string    `json:"response_body,omitempty"`
	Error        string    `json:"error,omitempty"`
	Dropped      bool      `json:"dropped,omitempty"`
	Duplicate    bool      `json:"duplicate,omitempty"`
}

type pending struct {
	hook      *WebhookConfig
	event     string
	body      []byte
	requestID string
}

// hookHub queues deliveries and sends them from one goroutine, in order.
type hookHub struct {
	s        *Server
	client   *http.Client
	attempts int
	backoff  time.Duration
	hooks    []*WebhookConfig
	nextID   int
	queue    []pending
	held     *pending // a delivery held back by Reorder
	busy     bool
	log      []Delivery
	wake     chan struct{}
	started  bool
}

func newHookHub(s *Server) *hookHub {
	return &hookHub{s: s, client: &http.Client{Timeout: 5 * time.Second}, attempts: 3, backoff: time.Second, wake: make(chan struct{}, 1)}
}

// add registers a webhook; the caller holds s.mu or is constructing s.
func (h *hookHub) add(c WebhookConfig) (int, error) {
	v, err := c.validate()
	if err != nil {
		return 0, err
	}
	h.nextID++
	v.ID = h.nextID
	cp := *v
	h.hooks = append(h.hooks, &cp)
	return cp.ID, nil
}

func (h *hookHub) find(id int) *WebhookConfig {
	for _, c := range h.hooks {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (c *WebhookConfig) wants(event string, p *pipeline) bool {
	if len(c.Events) > 0 && !slices.Contains(c.Events, event) {
		return false
	}
	if len(c.Pipelines) > 0 && p != nil && !slices.Contains(c.Pipelines, p.slug) && !slices.Contains(c.Pipelines, p.org.slug+"/"+p.slug) {
		return false
	}
	return true
}

// emit queues event for every webhook that wants it. Caller holds s.mu.
func (h *hookHub) emit(event string, p *pipeline, payload any) {
	body, err := json.Marshal(payload)
	if err != nil {
		return
	}
	for _, c := range h.hooks {
		if p != nil && p.org != nil && !c.wants(event, p) {
			continue
		}
		if p == nil && len(c.Events) > 0 && !slices.Contains(c.Events, event) {
			continue
		}
		h.queue = append(h.queue, pending{hook: c, event: event, body: body, requestID: uuid.NewString()})
	}
	h.start()
}

func (h *hookHub) start() {
	if !h.started {
		h.started = true
		h.s.wg.Add(1)
		go h.run()
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hookHub) run() {
	defer h.s.wg.Done()
	for {
		h.s.mu.Lock()
		if len(h.queue) == 0 {
			if h.held != nil {
				// Nothing came after the held delivery; send it now.
				p := *h.held
				h.held = nil
				h.busy = true
				h.s.mu.Unlock()
				h.deliverAll(*p.hook, p)
				continue
			}
			h.busy = false
			h.s.mu.Unlock()
			select {
			case <-h.wake:
				continue
			case <-h.s.closed:
				return
			}
		}
		p := h.queue[0]
		h.queue = h.queue[1:]
		h.busy = true
		cfg := *p.hook
		if cfg.Reorder && h.held == nil {
			// Hold this one back and send it after the next delivery.
			h.held = &p
			h.s.mu.Unlock()
			continue
		}
		after := h.held
		h.held = nil
		h.s.mu.Unlock()
		h.deliverAll(cfg, p)
		if after != nil {
			h.deliverAll(*after.hook, *after)
		}
	}
}

// deliverAll sends p, twice when the Duplicate switch is on.
func (h *hookHub) deliverAll(cfg WebhookConfig, p pending) {
	h.deliver(cfg, p, false)
	if cfg.Duplicate {
		h.deliver(cfg, p, true)
	}
}

// idle reports whether nothing is queued or in flight. Caller holds s.mu.
func (h *hookHub) idle() bool { return len(h.queue) == 0 && h.held == nil && !h.busy }

func (h *hookHub) deliver(cfg WebhookConfig, p pending, dup bool) {
	if cfg.Drop {
		h.record(Delivery{RequestID: p.requestID, Webhook: cfg.ID, Event: p.event, Attempt: 1, Time: h.s.now(), Dropped: true})
		return
	}
	wait := h.backoff
	for attempt := 1; attempt <= max(1, h.attempts); attempt++ {
		d := Delivery{RequestID: p.requestID, Webhook: cfg.ID, Event: p.event, Attempt: attempt, Time: h.s.now(), Duplicate: dup}
		status, body, err := h.send(cfg, p)
		d.Status, d.ResponseBody = status, body
		if err != nil {
			d.Error = err.Error()
		}
		h.record(d)
		if err == nil && status >= 200 && status < 300 {
			return
		}
		if attempt == h.attempts {
			return
		}
		select {
		case <-time.After(wait):
		case <-h.s.closed:
			return
		}
		wait *= 2
	}
}

func (h *hookHub) record(d Delivery) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	h.log = append(h.log, d)
}

func (h *hookHub) send(cfg WebhookConfig, p pending) (int, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(p.body))
	if err != nil {
		return 0, "", fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Buildkite-Request")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Accept-Encoding", "gzip;q=1.0,deflate;q=0.6,identity;q=0.3")
	req.Header.Set("X-Buildkite-Event", p.event)
	req.Header.Set("X-Buildkite-Request", p.requestID)
	if cfg.Mode == "signature" {
		// The timestamp is the dispatch time, not the event time (§10.3).
		req.Header.Set("X-Buildkite-Signature", Sign(cfg.Token, h.s.now().Unix(), p.body))
	} else {
		req.Header.Set("X-Buildkite-Token", cfg.Token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("deliver webhook: %w", redactURL(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode, string(b), nil
}

// redactURL drops the query of URLs in client errors, in case a receiver
// URL carries a secret.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// Sign returns the X-Buildkite-Signature value for body sent at unix time ts:
// "timestamp=<ts>,signature=<hex HMAC-SHA256(token, ts + "." + body)>".
func Sign(token string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	m.Write(body)
	return "timestamp=" + strconv.FormatInt(ts, 10) + ",signature=" + hex.EncodeToString(m.Sum(nil))
}

// ParseSignature splits an X-Buildkite-Signature header into its timestamp
// and signature bytes. Unlike go-buildkite's parser it never panics on
// malformed input.
func ParseSignature(header string) (ts int64, sig []byte, err error) {
	var tsText, sigText string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return 0, nil, errors.New("signature header part without '='")
		}
		switch k {
		case "timestamp":
			tsText = v
		case "signature":
			sigText = v
		}
	}
	if tsText == "" || sigText == "" {
		return 0, nil, errors.New("signature header lacks timestamp or signature")
	}
	ts, err = strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("signature timestamp: %w", err)
	}
	sig, err = hex.DecodeString(sigText)
	if err != nil {
		return 0, nil, fmt.Errorf("signature hex: %w", err)
	}
	return ts, sig, nil
}

// webhook payloads

func (s *Server) hookRenderer() renderer {
	base := s.base
	if base == "" {
		base = "https://api.buildkite.com"
	}
	return renderer{base: base, web: s.webBase, hook: true}
}

func (s *Server) sender(b *build) map[string]string {
	if b.creator == nil {
		return map[string]string{"id": "", "name": ""}
	}
	return map[string]string{"id": b.creator.id, "name": b.creator.name}
}

func (s *Server) emitBuild(event string, b *build) {
	rd := s.hookRenderer()
	bj := rd.build(b, buildOpts{excludeJobs: true, excludePipeline: true})
	s.hooks.emit(event, b.pipeline, map[string]any{"event": event, "build": bj, "pipeline": rd.pipeline(b.pipeline, s.w.builds), "sender": s.sender(b)})
}

func (s *Server) emitJob(event string, j *job) {
	rd := s.hookRenderer()
	b := j.build
	bj := rd.build(b, buildOpts{excludeJobs: true, excludePipeline: true})
	s.hooks.emit(event, b.pipeline, map[string]any{"event": event, "job": rd.job(j), "build": bj, "pipeline": rd.pipeline(b.pipeline, s.w.builds), "sender": s.sender(b)})
}

func (s *Server) emitPing(c *WebhookConfig) {
	og := s.w.orgs[0]
	rd := s.hookRenderer()
	payload := map[string]any{
		"event":        "ping",
		"service":      map[string]any{"id": stableID("service", strconv.Itoa(c.ID)), "provider": "webhook", "settings": map[string]string{"url": c.URL}},
		"organization": rd.org(og),
		"sender":       map[string]string{"id": s.w.users[0].id, "name": s.w.users[0].name},
	}
	body, _ := json.Marshal(payload)
	s.hooks.queue = append(s.hooks.queue, pending{hook: c, event: "ping", body: body, requestID: uuid.NewString()})
	s.hooks.start()
}
