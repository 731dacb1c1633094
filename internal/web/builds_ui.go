package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// buildRow is one line of the builds table.
type buildRow struct {
	ci.Build
	PipelineName string
	Duration     string
}

// ShortCommit is the first 7 characters of the commit.
func (b buildRow) ShortCommit() string {
	if len(b.Commit) > 7 {
		return b.Commit[:7]
	}
	return b.Commit
}

// buildsView is the data of the Builds page.
type buildsView struct {
	// ShownAt and Self let the page say how fresh it is and reload itself:
	// new builds appear on the next load.
	ShownAt   time.Time
	Self      string
	Filter    ci.BuildFilter
	PR        string
	Builds    []buildRow
	Pipelines []ci.Pipeline
	States    []string
	// NextURL pages to older builds; FirstURL back to the newest.
	NextURL  string
	FirstURL string
	// Filtered is set when any filter is in use.
	Filtered bool
	// Source explains an empty list: why there may be no builds yet.
	Source detectionSource
}

// detectionSource is what the empty states say about where builds come
// from.
type detectionSource struct {
	Status      string // the Buildkite integration status
	LastPoll    *time.Time
	PollError   string
	Webhook     bool
	LastWebhook *time.Time
	// PollInterval is how often the poller runs (Options.PollInterval).
	PollInterval time.Duration
}

// PollEvery is how often the poller runs, in words: "every minute",
// "every 30 seconds", "every 2 hours".
func (d detectionSource) PollEvery() string { return every(d.PollInterval) }

// every says how often something happens every d: "every minute", "every
// 5 minutes", "every 30 seconds", "every 1 min 30 s".
func every(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "every minute"
	case d == time.Hour:
		return "every hour"
	case d > 0 && d%time.Hour == 0:
		return "every " + plural(int(d/time.Hour), "hour")
	case d > 0 && d%time.Minute == 0:
		return "every " + plural(int(d/time.Minute), "minute")
	case d > 0 && d < time.Minute && d%time.Second == 0:
		return "every " + plural(int(d/time.Second), "second")
	}
	return "every " + duration(d)
}

// Connected reports whether kitewatch can read builds.
func (d detectionSource) Connected() bool { return d.Status == ci.StatusConnected }

// buildStates are the states the filter offers, in the order of a build's
// life.
var buildStates = []string{ci.BuildScheduled, ci.BuildRunning, ci.BuildBlocked, ci.BuildFailing, ci.BuildFailed,
	ci.BuildPassed, ci.BuildCanceling, ci.BuildCanceled, ci.BuildSkipped}

// buildsPage lists builds with the same filters and store query as
// GET /api/v1/orgs/{org}/builds (buildFilter, ListBuilds).
func (s *Server) buildsPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	pg.Title, pg.Section = "Builds", "builds"
	f, err := buildFilter(r, p.Org.ID)
	if err != nil {
		return err
	}
	bs, err := s.db.ListBuilds(r.Context(), f)
	if err != nil {
		return err
	}
	ps, err := s.db.Pipelines(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, pl := range ps {
		names[pl.Slug] = pl.Name
	}
	v := buildsView{Filter: f, Pipelines: ps, States: buildStates, ShownAt: time.Now(), Self: r.URL.RequestURI(),
		Filtered: f.Pipeline != "" || f.Branch != "" || f.State != "" || f.PullRequest != 0 || f.Commit != ""}
	for _, b := range bs {
		v.Builds = append(v.Builds, buildRow{Build: b, PipelineName: names[b.Pipeline], Duration: durationOf(b.StartedAt, b.FinishedAt)})
	}
	if f.PullRequest != 0 {
		v.PR = strconv.Itoa(f.PullRequest)
	}
	base := "/orgs/" + url.PathEscape(p.Org.Slug) + "/builds"
	q := r.URL.Query()
	if len(bs) == f.Limit {
		q.Set("before", strconv.FormatInt(bs[len(bs)-1].ID, 10))
		v.NextURL = base + "?" + q.Encode()
	}
	if f.BeforeID != 0 {
		q.Del("before")
		v.FirstURL = base
		if len(q) > 0 {
			v.FirstURL += "?" + q.Encode()
		}
	}
	if len(bs) == 0 {
		if v.Source, err = s.detectionSource(r, p); err != nil {
			return err
		}
	}
	pg.Data = v
	s.render(w, r, http.StatusOK, "builds", *pg)
	return nil
}

// detectionSource gathers what the empty states say: the integration
// status, the poller's last run and the webhook.
func (s *Server) detectionSource(r *http.Request, p *principal) (detectionSource, error) {
	var d detectionSource
	if s.Integrations != nil {
		st, err := s.Integrations.Status(r.Context(), *p.Org)
		if err != nil {
			return d, err
		}
		d.Status = st.Status
	}
	ps, err := s.db.PollState(r.Context(), p.Org.ID)
	if err != nil {
		return d, err
	}
	d.LastPoll, d.PollError, d.PollInterval = ps.LastSuccessAt, ps.LastError, s.PollInterval
	if s.detection != nil {
		ws, err := s.webhookStatusOf(r.Context(), *p.Org)
		if err != nil {
			return d, err
		}
		d.Webhook, d.LastWebhook = ws.Configured, ws.LastDeliveryAt
	}
	return d, nil
}

// durationOf is the time between start and end in words, "under 1 s" for
// a build or job that finished as it started; "" unless both are known.
func durationOf(start, end *time.Time) string {
	if start == nil || end == nil || end.Before(*start) {
		return ""
	}
	if d := end.Sub(*start); d >= 500*time.Millisecond {
		return duration(d)
	}
	return "under 1 s"
}

// duration is a build or job duration in words: "45 s", "3 min 20 s",
// "1 h 5 min"; "" when not known.
func duration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Second:
		return "under 1 s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		m, sec := int(d/time.Minute), int(d%time.Minute/time.Second)
		if sec == 0 {
			return strconv.Itoa(m) + " min"
		}
		return strconv.Itoa(m) + " min " + strconv.Itoa(sec) + " s"
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return strconv.Itoa(h) + " h"
	}
	return strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
}

// buildPageData is the build page: the build, its jobs and its analysis.
type buildPageData struct {
	buildAnalysisPage
	PipelineName string
	Duration     string
	Jobs         []jobRow
	// Connected is false when the Buildkite token is missing or broken,
	// which explains a missing analysis.
	Connected bool
}

// jobRow is one line of the jobs table.
type jobRow struct {
	jobView
	Duration string
}

func (s *Server) buildPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	b, err := s.loadBuild(r, p.Org.ID)
	if errors.Is(err, ci.ErrNotFound) {
		pg.Section = "builds"
		return ci.Errorf(ci.ErrNotFound, "build_not_found", "there is no such build in %s: the link may be wrong or out of date. "+
			"The Builds page lists every build kitewatch knows", p.Org.Name)
	}
	if err != nil {
		return err
	}
	pg.Title, pg.Section = b.Pipeline+" #"+strconv.Itoa(b.Number), "builds"
	data, err := s.withAnalysis(r, b)
	if err != nil {
		return err
	}
	v := buildPageData{Duration: durationOf(b.Build.StartedAt, b.Build.FinishedAt), PipelineName: b.Pipeline, Connected: true}
	if ap, ok := data.(buildAnalysisPage); ok {
		v.buildAnalysisPage = ap
	} else {
		v.buildAnalysisPage = buildAnalysisPage{buildWithJobs: b}
	}
	for _, j := range b.Jobs {
		v.Jobs = append(v.Jobs, jobRow{jobView: j, Duration: durationOf(j.Job.StartedAt, j.Job.FinishedAt)})
	}
	ps, err := s.db.Pipelines(r.Context(), p.Org.ID)
	if err != nil {
		return err
	}
	for _, pl := range ps {
		if pl.Slug == b.Pipeline && pl.Name != "" {
			v.PipelineName = pl.Name
		}
	}
	if s.Integrations != nil {
		st, err := s.Integrations.Status(r.Context(), *p.Org)
		if err != nil {
			return err
		}
		v.Connected = st.Status == ci.StatusConnected
	}
	pg.Data = v
	s.render(w, r, http.StatusOK, "build", *pg)
	return nil
}
