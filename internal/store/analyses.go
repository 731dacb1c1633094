package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// maxFingerprintScan bounds how many recent default-branch fingerprints
// FailingFingerprints reads.
const maxFingerprintScan = 5000

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

const analysisCols = `id, org_id, build_id, attempt, status, started_at, finished_at, error, skipped, jobs`

func scanAnalysis(s scanner) (ci.Analysis, error) {
	var a ci.Analysis
	var started int64
	var finished sql.NullInt64
	var skipped, jobs string
	if err := s.Scan(&a.ID, &a.OrgID, &a.BuildID, &a.Attempt, &a.Status, &started, &finished, &a.Error, &skipped, &jobs); err != nil {
		return ci.Analysis{}, err
	}
	a.StartedAt, a.FinishedAt = fromMicros(started), fromOptMicros(finished)
	if err := json.Unmarshal([]byte(skipped), &a.Skipped); err != nil {
		return ci.Analysis{}, fmt.Errorf("decode skipped evidence: %w", err)
	}
	if err := json.Unmarshal([]byte(jobs), &a.Jobs); err != nil {
		return ci.Analysis{}, fmt.Errorf("decode analysed jobs: %w", err)
	}
	if a.Skipped == nil {
		a.Skipped = []ci.SkippedEvidence{}
	}
	if a.Jobs == nil {
		a.Jobs = []ci.AnalysedJob{}
	}
	a.Findings = []ci.Finding{}
	return a, nil
}

// SaveAnalysis stores a's header (status, times, skipped evidence, jobs, error)
// for its build and attempt, replacing any analysis of the same attempt
// together with its findings, and then stores a.Findings in order. Running
// the same analysis twice therefore replaces rather than duplicates. It
// returns a with its id. Call it inside a transaction (Tx) so that the
// analysis and its findings appear at once.
func (x q) SaveAnalysis(ctx context.Context, a ci.Analysis) (ci.Analysis, error) {
	skipped, err := toJSON(nonNilSlice(a.Skipped))
	if err != nil {
		return ci.Analysis{}, fmt.Errorf("encode skipped evidence: %w", err)
	}
	jobs, err := toJSON(nonNilSlice(a.Jobs))
	if err != nil {
		return ci.Analysis{}, fmt.Errorf("encode analysed jobs: %w", err)
	}
	// The build must be the organization's: an analysis is never stored
	// under, nor replaces one of, another organization's build.
	var one int
	if err := x.w.QueryRowContext(ctx, `SELECT 1 FROM builds WHERE org_id = $1 AND id = $2`, a.OrgID, a.BuildID).Scan(&one); err != nil {
		return ci.Analysis{}, notFound(err, fmt.Sprintf("build %d of organization %d", a.BuildID, a.OrgID))
	}
	if _, err := x.w.ExecContext(ctx, `DELETE FROM findings WHERE analysis_id IN
		(SELECT id FROM analyses WHERE org_id = $1 AND build_id = $2 AND attempt = $3)`, a.OrgID, a.BuildID, a.Attempt); err != nil {
		return ci.Analysis{}, fmt.Errorf("delete previous findings of build %d attempt %d: %w", a.BuildID, a.Attempt, err)
	}
	if _, err := x.w.ExecContext(ctx, `DELETE FROM analyses WHERE org_id = $1 AND build_id = $2 AND attempt = $3`,
		a.OrgID, a.BuildID, a.Attempt); err != nil {
		return ci.Analysis{}, fmt.Errorf("delete previous analysis of build %d attempt %d: %w", a.BuildID, a.Attempt, err)
	}
	if a.StartedAt.IsZero() {
		a.StartedAt = x.now()
	}
	a.StartedAt = fromMicros(micros(a.StartedAt))
	if a.FinishedAt != nil {
		t := fromMicros(micros(*a.FinishedAt))
		a.FinishedAt = &t
	}
	err = x.w.QueryRowContext(ctx, `INSERT INTO analyses (org_id, build_id, attempt, status, started_at, finished_at,
		error, skipped, jobs, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		a.OrgID, a.BuildID, a.Attempt, a.Status, micros(a.StartedAt), optMicros(a.FinishedAt), a.Error, skipped, jobs,
		micros(x.now())).Scan(&a.ID)
	if err != nil {
		return ci.Analysis{}, x.conflict(err, fmt.Sprintf("analysis of build %d attempt %d", a.BuildID, a.Attempt))
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		f.AnalysisID = a.ID
		if f.JobCount == 0 {
			f.JobCount = len(f.JobIDs)
		}
		if f.Source == "" {
			f.Source = ci.FindingFromLog
		}
		var cols [4]string
		for j, v := range []any{nonNilSlice(f.Excerpt), nonNilSlice(f.Locations), nonNilSlice(f.Tests), nonNilSlice(f.JobIDs)} {
			if cols[j], err = toJSON(v); err != nil {
				return ci.Analysis{}, fmt.Errorf("encode finding %d: %w", i, err)
			}
		}
		err = x.w.QueryRowContext(ctx, `INSERT INTO findings (analysis_id, org_id, build_id, position, category, title,
			section, excerpt, locations, tests, fingerprint, confidence, first_line, last_line, job_ids, job_count,
			also_failing_on_default_branch, flaky, source)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id`,
			a.ID, a.OrgID, a.BuildID, i, f.Category, f.Title, f.Section, cols[0], cols[1], cols[2], f.Fingerprint,
			f.Confidence, f.FirstLine, f.LastLine, cols[3], f.JobCount, f.AlsoFailingOnDefaultBranch, f.Flaky,
			f.Source).Scan(&f.ID)
		if err != nil {
			return ci.Analysis{}, fmt.Errorf("save finding %d of build %d: %w", i, a.BuildID, err)
		}
	}
	if a.Findings == nil {
		a.Findings = []ci.Finding{}
	}
	return a, nil
}

// nonNilSlice returns s, or an empty slice of the same type when s is nil,
// so that JSON columns hold [] rather than null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// LatestAnalysis loads the analysis of a build's highest attempt with its
// findings. A build of another organization, or one never analysed, is
// ci.ErrNotFound.
func (x q) LatestAnalysis(ctx context.Context, orgID, buildID int64) (ci.Analysis, error) {
	a, err := scanAnalysis(x.r.QueryRowContext(ctx, `SELECT `+analysisCols+` FROM analyses
		WHERE org_id = $1 AND build_id = $2 ORDER BY attempt DESC LIMIT 1`, orgID, buildID))
	if err != nil {
		return ci.Analysis{}, notFound(err, "analysis")
	}
	if a.Findings, err = x.findings(ctx, a.ID); err != nil {
		return ci.Analysis{}, err
	}
	return a, nil
}

// AnalysisOf loads the analysis of one attempt of a build with its findings.
func (x q) AnalysisOf(ctx context.Context, orgID, buildID int64, attempt int) (ci.Analysis, error) {
	a, err := scanAnalysis(x.r.QueryRowContext(ctx, `SELECT `+analysisCols+` FROM analyses
		WHERE org_id = $1 AND build_id = $2 AND attempt = $3`, orgID, buildID, attempt))
	if err != nil {
		return ci.Analysis{}, notFound(err, "analysis")
	}
	if a.Findings, err = x.findings(ctx, a.ID); err != nil {
		return ci.Analysis{}, err
	}
	return a, nil
}

func (x q) findings(ctx context.Context, analysisID int64) ([]ci.Finding, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT id, analysis_id, category, title, section, excerpt, locations, tests,
		fingerprint, confidence, first_line, last_line, job_ids, job_count, also_failing_on_default_branch, flaky, source
		FROM findings WHERE analysis_id = $1 ORDER BY position`, analysisID)
	if err != nil {
		return nil, fmt.Errorf("list findings: %w", err)
	}
	defer rows.Close()
	out := []ci.Finding{}
	for rows.Next() {
		var f ci.Finding
		var excerpt, locs, tests, jobs string
		if err := rows.Scan(&f.ID, &f.AnalysisID, &f.Category, &f.Title, &f.Section, &excerpt, &locs, &tests,
			&f.Fingerprint, &f.Confidence, &f.FirstLine, &f.LastLine, &jobs, &f.JobCount, &f.AlsoFailingOnDefaultBranch,
			&f.Flaky, &f.Source); err != nil {
			return nil, fmt.Errorf("list findings: %w", err)
		}
		for _, c := range []struct {
			src string
			dst any
		}{{excerpt, &f.Excerpt}, {locs, &f.Locations}, {tests, &f.Tests}, {jobs, &f.JobIDs}} {
			if err := json.Unmarshal([]byte(c.src), c.dst); err != nil {
				return nil, fmt.Errorf("decode finding %d: %w", f.ID, err)
			}
		}
		f.Excerpt, f.Locations, f.Tests, f.JobIDs = nonNilSlice(f.Excerpt), nonNilSlice(f.Locations),
			nonNilSlice(f.Tests), nonNilSlice(f.JobIDs)
		out = append(out, f)
	}
	return out, rows.Err()
}

// FailingFingerprints returns the fingerprints of findings of an
// organization's builds of pipeline on branch created since the given time,
// other than build exceptBuildID: what is "also failing" there.
func (x q) FailingFingerprints(ctx context.Context, orgID int64, pipeline, branch string, since time.Time,
	exceptBuildID int64) (map[string]bool, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT DISTINCT f.fingerprint FROM findings f JOIN builds b ON b.id = f.build_id
		WHERE f.org_id = $1 AND b.org_id = $1 AND b.pipeline = $2 AND b.branch = $3 AND b.pr_number = 0 AND b.id <> $4
		AND COALESCE(b.created_at, b.first_seen_at) >= $5 LIMIT $6`,
		orgID, pipeline, branch, exceptBuildID, micros(since), maxFingerprintScan)
	if err != nil {
		return nil, fmt.Errorf("list failing fingerprints of %s on %s: %w", pipeline, branch, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			return nil, fmt.Errorf("list failing fingerprints: %w", err)
		}
		out[fp] = true
	}
	return out, rows.Err()
}

// Read-side and single-statement wrappers on DB.

// LatestAnalysis loads a build's latest analysis; see q.LatestAnalysis.
func (db *DB) LatestAnalysis(ctx context.Context, orgID, buildID int64) (ci.Analysis, error) {
	return db.q().LatestAnalysis(ctx, orgID, buildID)
}

// AnalysisOf loads one attempt's analysis; see q.AnalysisOf.
func (db *DB) AnalysisOf(ctx context.Context, orgID, buildID int64, attempt int) (ci.Analysis, error) {
	return db.q().AnalysisOf(ctx, orgID, buildID, attempt)
}

// FailingFingerprints lists recent failing fingerprints on a branch; see
// q.FailingFingerprints.
func (db *DB) FailingFingerprints(ctx context.Context, orgID int64, pipeline, branch string, since time.Time,
	exceptBuildID int64) (map[string]bool, error) {
	return db.q().FailingFingerprints(ctx, orgID, pipeline, branch, since, exceptBuildID)
}

// SaveAnalysis stores an analysis and its findings in one transaction; see
// q.SaveAnalysis.
func (db *DB) SaveAnalysis(ctx context.Context, a ci.Analysis) (ci.Analysis, error) {
	var out ci.Analysis
	err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.SaveAnalysis(ctx, a)
		return err
	})
	return out, err
}
