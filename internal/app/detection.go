package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/riverqueue/river"

	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/ingest"
	"github.com/kitewatch/kitewatch/internal/poller"
	"github.com/kitewatch/kitewatch/internal/tasks"
	"github.com/kitewatch/kitewatch/internal/web"
	"github.com/kitewatch/kitewatch/internal/webhook"
)

// detection is build detection as wired into the app: the ingest funnel,
// webhook intake and the poller.
type detection struct {
	a        *App
	ingester *ingest.Ingester
	webhooks *webhook.Service
	poller   *poller.Poller
	// onConfigured is Deps.OnWebhookConfigured.
	onConfigured func(url, secret, mode string)
}

// backfillArgs is a backfill started from the API.
type backfillArgs struct {
	OrgID int64     `json:"org_id"`
	Since time.Time `json:"since"`
}

func (backfillArgs) Kind() string { return "backfill_buildkite" }

// wireDetection registers build detection (webhook intake, polling, ingest)
// and failure analysis with the server and the task queue.
func (a *App) wireDetection(d Deps) {
	det := &detection{a: a, onConfigured: d.OnWebhookConfigured}
	det.ingester = ingest.New(a.db, a.queue)
	det.webhooks = webhook.New(webhook.Options{DB: a.db, Keys: d.Keys, Queue: a.queue, Ingester: det.ingester,
		PublicURL: a.cfg.PublicURL, Logger: a.logger.With("component", "webhook"), Registry: a.registry, Now: a.db.Now})
	det.poller = poller.New(poller.Options{DB: a.db, Clients: a.integrations, Ingester: det.ingester,
		Logger: a.logger.With("component", "poller"), Registry: a.registry, Now: a.db.Now})
	det.webhooks.Register(a.queue)
	tasks.Handle(a.queue, func(ctx context.Context, _ poller.PollArgs) error { return det.poller.RunAll(ctx) })
	tasks.Handle(a.queue, func(ctx context.Context, b backfillArgs) error {
		_, err := det.poller.Backfill(ctx, b.OrgID, b.Since, nil)
		return err
	})
	interval := a.cfg.PollInterval
	if interval <= 0 {
		interval = time.Minute
	}
	a.queue.Every(interval, "poll_buildkite", func() river.JobArgs { return poller.PollArgs{} }, true)
	a.web.MountDetection(det)
	a.detect = det
}

// Poller returns the build poller (tests, CLI).
func (a *App) Poller() *poller.Poller { return a.detect.poller }

// Webhooks returns the webhook intake service.
func (a *App) Webhooks() *webhook.Service { return a.detect.webhooks }

// detection implements web.Detection: it turns the webhook and poller
// results into the web package's view types, so web needs neither package.
var _ web.Detection = (*detection)(nil)

func (d *detection) WebhookHandler() http.Handler { return d.webhooks }

func (d *detection) ConfigureWebhook(ctx context.Context, org ci.Org, mode string) (web.WebhookSetup, error) {
	setup, err := d.webhooks.Configure(ctx, org.ID, mode)
	if err != nil {
		return web.WebhookSetup{}, err
	}
	if d.onConfigured != nil {
		d.onConfigured(setup.URL, setup.Token, setup.Mode)
	}
	return web.WebhookSetup{URL: setup.URL, Token: setup.Token, Mode: setup.Mode, Events: setup.Events,
		Instructions: setup.Instructions}, nil
}

func (d *detection) WebhookStatus(ctx context.Context, org ci.Org) (web.WebhookStatus, error) {
	st, err := d.webhooks.Status(ctx, org.ID)
	if err != nil {
		return web.WebhookStatus{}, err
	}
	return web.WebhookStatus{Configured: st.Configured, URL: st.URL, Mode: st.Mode, Weaker: st.Weaker, Events: st.Events,
		CreatedAt: st.CreatedAt, RotatedAt: st.RotatedAt, LastDeliveryAt: st.LastDeliveryAt,
		Deliveries24h: st.Deliveries24h, Unprocessed: st.Unprocessed}, nil
}

func (d *detection) PollNow(ctx context.Context, org ci.Org) (web.PollResult, error) {
	if _, err := d.a.db.Integration(ctx, org.ID, "buildkite"); err != nil {
		if errors.Is(err, ci.ErrNotFound) {
			return web.PollResult{}, ci.Errorf(ci.ErrConflict, "not_connected", "connect Buildkite first")
		}
		return web.PollResult{}, err
	}
	rep, err := d.poller.RunNow(ctx, org.ID)
	res := web.PollResult{Report: web.PollReport{Calls: rep.Calls, Builds: rep.Builds, Complete: rep.Complete}}
	if err != nil {
		res.Error = poller.SafeError(err)
	}
	return res, nil
}

func (d *detection) StartBackfill(ctx context.Context, org ci.Org, since time.Time) (web.BackfillStarted, error) {
	in, err := d.a.db.Integration(ctx, org.ID, "buildkite")
	if err != nil || in.Status == ci.StatusDisconnected {
		return web.BackfillStarted{}, ci.Errorf(ci.ErrConflict, "not_connected", "connect Buildkite first")
	}
	if err := d.a.queue.Enqueue(ctx, backfillArgs{OrgID: org.ID, Since: since.UTC().Truncate(time.Second)}, tasks.Unique); err != nil {
		return web.BackfillStarted{}, fmt.Errorf("enqueue backfill: %w", err)
	}
	return web.BackfillStarted{Status: "started", Since: since.UTC()}, nil
}

// Diagnostics gathers the facts and runs the checks.
func (d *detection) Diagnostics(ctx context.Context, org ci.Org) ([]web.DiagnosticCheck, error) {
	st, err := d.a.integrations.Status(ctx, org)
	if err != nil {
		return nil, err
	}
	f := poller.Facts{Now: d.a.db.Now(), Connected: st.Status == ci.StatusConnected || st.Status == ci.StatusNeedsAttention,
		PollInterval: d.a.cfg.PollInterval}
	if st.Token != nil {
		f.Scopes = st.Token.Scopes
	}
	if f.Pipelines, err = d.a.db.Pipelines(ctx, org.ID); err != nil {
		return nil, err
	}
	if f.LatestBuilds, err = d.a.db.LatestBuilds(ctx, org.ID); err != nil {
		return nil, err
	}
	ws, err := d.webhooks.Status(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	f.WebhookConfigured, f.LastDelivery = ws.Configured, ws.LastDeliveryAt
	f.WebhookSince = ws.RotatedAt
	if f.Poll, err = d.a.db.PollState(ctx, org.ID); err != nil {
		return nil, fmt.Errorf("load poll state: %w", err)
	}
	checks := poller.Diagnose(f)
	out := make([]web.DiagnosticCheck, len(checks))
	for i, c := range checks {
		out[i] = web.DiagnosticCheck{ID: c.ID, Status: c.Status, Message: c.Message, Remedy: c.Remedy}
	}
	return out, nil
}

// pollSoon enqueues a poll right after Buildkite is connected, so builds
// appear within seconds instead of at the next poll interval.
func (a *App) pollSoon(ctx context.Context, org ci.Org) {
	if err := a.queue.Enqueue(ctx, poller.PollArgs{}, tasks.UniqueWhilePending); err != nil {
		a.logger.WarnContext(ctx, "could not start polling after connect", "org", org.Slug, "error", err)
	}
}
