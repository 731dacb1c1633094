package web

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	terminal "github.com/buildkite/terminal-to-html/v3"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// AnalysisRoutes registers the failure-analysis surfaces: the JSON API
// GET /api/v1/orgs/{org}/builds/{id}/analysis and the HTML page
// /orgs/{org}/builds/{id}/analysis (the build page with its analysis).
func (s *Server) AnalysisRoutes() {
	s.mux.Handle("GET /api/v1/orgs/{org}/builds/{id}/analysis", s.orgAPI(roleMember, s.getAnalysis))
}

// jobLink is a job a finding occurred in, with the deep link to its log on
// Buildkite (<build web_url>#<job id>).
type jobLink struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	LogURL string `json:"log_url"`
}

// findingView is a finding as the API and the page show it.
type findingView struct {
	ci.Finding
	Jobs []jobLink `json:"jobs"`
	// HTML is the excerpt rendered by terminal-to-html (page only).
	HTML template.HTML `json:"-"`
}

// analysisDoc is the analysis as the API returns it.
type analysisDoc struct {
	ci.Analysis
	Findings []findingView `json:"findings"`
}

// AnalysisView is the data of the "analysis" template partial.
type AnalysisView struct {
	Build    ci.Build
	Analysis *analysisDoc
}

// analysisCarrier is page data that carries a build's analysis.
type analysisCarrier interface{ AnalysisView() *AnalysisView }

// analysisOf is the template function that extracts the analysis from a
// page's data, or nil when the data carries none.
func analysisOf(data any) *AnalysisView {
	if c, ok := data.(analysisCarrier); ok {
		return c.AnalysisView()
	}
	return nil
}

// buildAnalysisPage is the build page's data with the analysis.
type buildAnalysisPage struct {
	buildWithJobs
	Analysis *AnalysisView
}

func (p buildAnalysisPage) AnalysisView() *AnalysisView { return p.Analysis }

// analysisView loads a build's latest analysis for display; a build never
// analysed gives a view without one.
func (s *Server) analysisView(ctx context.Context, b ci.Build) (*AnalysisView, error) {
	v := &AnalysisView{Build: b}
	a, err := s.db.LatestAnalysis(ctx, b.OrgID, b.ID)
	if errors.Is(err, ci.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	v.Analysis = newAnalysisDoc(b, a, true)
	return v, nil
}

func newAnalysisDoc(b ci.Build, a ci.Analysis, render bool) *analysisDoc {
	names := map[string]ci.AnalysedJob{}
	for _, j := range a.Jobs {
		names[j.ID] = j
	}
	doc := &analysisDoc{Analysis: a, Findings: make([]findingView, 0, len(a.Findings))}
	for _, f := range a.Findings {
		fv := findingView{Finding: f, Jobs: []jobLink{}}
		for _, id := range f.JobIDs {
			l := jobLink{ID: id, Name: names[id].Name, LogURL: names[id].WebURL}
			if b.WebURL != "" {
				l.LogURL = b.WebURL + "#" + id
			}
			if !strings.HasPrefix(l.LogURL, "https://") && !strings.HasPrefix(l.LogURL, "http://") {
				l.LogURL = ""
			}
			fv.Jobs = append(fv.Jobs, l)
		}
		if render {
			fv.HTML = renderExcerpt(f.Excerpt)
		}
		doc.Findings = append(doc.Findings, fv)
	}
	doc.Analysis.Findings = nil
	return doc
}

var (
	promptLine = regexp.MustCompile(`^\s*\$ `)
	passLine   = regexp.MustCompile(`^\s*(--- PASS|ok\s|PASS\b|✓)`)
	failLine   = regexp.MustCompile(`(?i)(\bFAIL|\berror\b|panic:|exception|traceback|fatal|🚨|^E\s)`)
)

// renderExcerpt colours an excerpt (stored ANSI-free) and renders it with
// terminal-to-html: the root-cause line bold red, failure lines red,
// passing lines green, commands grey, masked secrets yellow. The excerpt is
// a few dozen lines at most; terminal-to-html escapes the text.
func renderExcerpt(lines []string) template.HTML {
	var b strings.Builder
	for i, l := range lines {
		l = strings.ReplaceAll(l, "\x1b", "")
		code := ""
		switch {
		case i == 0:
			code = "\x1b[1;31m"
		case promptLine.MatchString(l):
			code = "\x1b[90m"
		case passLine.MatchString(l):
			code = "\x1b[32m"
		case failLine.MatchString(l):
			code = "\x1b[31m"
		}
		l = strings.ReplaceAll(l, "[REDACTED]", "\x1b[33m[REDACTED]\x1b[0m"+code)
		if code != "" {
			l = code + l + "\x1b[0m"
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	// terminal.Render escapes HTML in the text; its output is safe markup.
	return template.HTML(terminal.Render([]byte(b.String()))) //nolint:gosec // escaped by terminal-to-html
}

func (s *Server) buildOf(r *http.Request, orgID int64) (ci.Build, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return ci.Build{}, ci.Errorf(ci.ErrNotFound, "not_found", "build not found")
	}
	b, err := s.db.Build(r.Context(), orgID, id)
	if errors.Is(err, ci.ErrNotFound) {
		return ci.Build{}, ci.Errorf(ci.ErrNotFound, "not_found", "build not found")
	}
	return b, err
}

// getAnalysis answers GET /api/v1/orgs/{org}/builds/{id}/analysis with the
// build's latest analysis (docs/analysis.md, "Build analysis").
func (s *Server) getAnalysis(w http.ResponseWriter, r *http.Request, p *principal) error {
	b, err := s.buildOf(r, p.Org.ID)
	if err != nil {
		return err
	}
	a, err := s.db.LatestAnalysis(r.Context(), p.Org.ID, b.ID)
	if errors.Is(err, ci.ErrNotFound) {
		return ci.Errorf(ci.ErrNotFound, "not_analysed", "this build has no analysis yet")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"build": map[string]any{"id": b.ID, "pipeline": b.Pipeline, "number": b.Number, "state": b.State,
			"branch": b.Branch, "web_url": b.WebURL},
		"analysis": newAnalysisDoc(b, a, false),
	})
	return nil
}

// withAnalysis returns build page data that also carries the build's
// analysis.
func (s *Server) withAnalysis(r *http.Request, b buildWithJobs) (any, error) {
	v, err := s.analysisView(r.Context(), b.Build)
	if err != nil {
		return nil, err
	}
	return buildAnalysisPage{buildWithJobs: b, Analysis: v}, nil
}
