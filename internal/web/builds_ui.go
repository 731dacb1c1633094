package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// buildsView is the data of the Builds page.
type buildsView struct {
	Filter    ci.BuildFilter
	PR        string
	Builds    []ci.Build
	Pipelines []ci.Pipeline
	States    []string
	NextURL   string
}

func (s *Server) buildsPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
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
	v := buildsView{Filter: f, Builds: bs, Pipelines: ps, States: []string{ci.BuildRunning, ci.BuildFailing, ci.BuildFailed,
		ci.BuildPassed, ci.BuildCanceled, ci.BuildScheduled, ci.BuildBlocked}}
	if f.PullRequest != 0 {
		v.PR = strconv.Itoa(f.PullRequest)
	}
	if len(bs) == f.Limit {
		q := r.URL.Query()
		q.Set("before", strconv.FormatInt(bs[len(bs)-1].ID, 10))
		v.NextURL = "/orgs/" + url.PathEscape(p.Org.Slug) + "/builds?" + q.Encode()
	}
	pg.Title, pg.Section, pg.Data = "Builds", "builds", v
	s.render(w, r, http.StatusOK, "builds", *pg)
	return nil
}

func (s *Server) buildPage(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	b, err := s.loadBuild(r, p.Org.ID)
	if err != nil {
		return err
	}
	pg.Title, pg.Section = b.Pipeline+" #"+strconv.Itoa(b.Number), "builds"
	if pg.Data, err = s.withAnalysis(r, b); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "build", *pg)
	return nil
}
