package web

import (
	"net/http"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// overviewData is the organization's Overview page.
type overviewData struct {
	Buildkite *buildkiteData
	Pipelines int
	// Failed are the latest failed builds with their top finding.
	Failed []failedBuild
	// Webhook is nil when build detection is not running.
	Webhook *WebhookStatus
}

// failedBuild is a failed build and the title of its analysis' most causal
// finding ("" when not analysed or nothing found).
type failedBuild struct {
	buildRow
	Finding  string
	Category string
	Analysis string // the analysis status, "" when none
}

// overviewFailed is how many failed builds the Overview lists.
const overviewFailed = 5

func (s *Server) overview(r *http.Request, p *principal) (overviewData, error) {
	var d overviewData
	if s.Integrations != nil {
		bk, err := s.buildkiteData(r, p)
		if err != nil {
			return d, err
		}
		d.Buildkite = &bk
	}
	ps, err := s.db.Pipelines(r.Context(), p.Org.ID)
	if err != nil {
		return d, err
	}
	d.Pipelines = len(ps)
	names := map[string]string{}
	for _, pl := range ps {
		names[pl.Slug] = pl.Name
	}
	bs, err := s.db.ListBuilds(r.Context(), ci.BuildFilter{OrgID: p.Org.ID, State: ci.BuildFailed, Limit: overviewFailed})
	if err != nil {
		return d, err
	}
	for _, b := range bs {
		fb := failedBuild{buildRow: buildRow{Build: b, PipelineName: names[b.Pipeline], Duration: duration(b.Duration())}}
		v, err := s.analysisView(r.Context(), b)
		if err != nil {
			return d, err
		}
		if a := v.Analysis; a != nil {
			fb.Analysis = a.Status
			if len(a.Findings) > 0 {
				fb.Finding, fb.Category = a.Findings[0].Title, a.Findings[0].Category
			}
		}
		d.Failed = append(d.Failed, fb)
	}
	if s.detection != nil {
		ws, err := s.webhookStatusOf(r.Context(), *p.Org)
		if err != nil {
			return d, err
		}
		d.Webhook = &ws
	}
	return d, nil
}
