package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kitewatch/kitewatch/internal/ci"
)

// scanner is what *sql.Row and *sql.Rows provide.
type scanner interface{ Scan(...any) error }

func optBool(p *bool) sql.NullBool {
	if p == nil {
		return sql.NullBool{}
	}
	return sql.NullBool{Bool: *p, Valid: true}
}

func fromOptBool(v sql.NullBool) *bool {
	if !v.Valid {
		return nil
	}
	b := v.Bool
	return &b
}

func optInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func fromOptInt(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

const pipelineCols = `id, org_id, slug, name, ext_id, repository, repo_key, provider, default_branch,
	publish_commit_status, build_pull_requests, web_url, updated_at`

func scanPipeline(s scanner) (ci.Pipeline, error) {
	var p ci.Pipeline
	var pcs, bpr sql.NullBool
	var updated int64
	err := s.Scan(&p.ID, &p.OrgID, &p.Slug, &p.Name, &p.ExtID, &p.Repository, &p.RepoKey, &p.Provider, &p.DefaultBranch,
		&pcs, &bpr, &p.WebURL, &updated)
	p.PublishCommitStatus, p.BuildPullRequests = fromOptBool(pcs), fromOptBool(bpr)
	p.UpdatedAt = fromMicros(updated)
	return p, err
}

// UpsertPipeline inserts or updates an organization's pipeline by slug and
// returns it with its id.
func (x q) UpsertPipeline(ctx context.Context, p ci.Pipeline) (ci.Pipeline, error) {
	p.UpdatedAt = fromMicros(micros(x.now()))
	err := x.w.QueryRowContext(ctx, `INSERT INTO pipelines (org_id, slug, name, ext_id, repository, repo_key, provider,
		default_branch, publish_commit_status, build_pull_requests, web_url, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (org_id, slug) DO UPDATE SET name = excluded.name, ext_id = excluded.ext_id,
		repository = excluded.repository, repo_key = excluded.repo_key, provider = excluded.provider,
		default_branch = excluded.default_branch, publish_commit_status = excluded.publish_commit_status,
		build_pull_requests = excluded.build_pull_requests, web_url = excluded.web_url, updated_at = excluded.updated_at
		RETURNING id`, p.OrgID, p.Slug, p.Name, p.ExtID, p.Repository, p.RepoKey, p.Provider, p.DefaultBranch,
		optBool(p.PublishCommitStatus), optBool(p.BuildPullRequests), p.WebURL, micros(p.UpdatedAt)).Scan(&p.ID)
	if err != nil {
		return ci.Pipeline{}, fmt.Errorf("save pipeline %s: %w", p.Slug, err)
	}
	return p, nil
}

// Pipeline loads one pipeline of an organization by slug.
func (x q) Pipeline(ctx context.Context, orgID int64, slug string) (ci.Pipeline, error) {
	p, err := scanPipeline(x.r.QueryRowContext(ctx, `SELECT `+pipelineCols+` FROM pipelines WHERE org_id = $1 AND slug = $2`, orgID, slug))
	if err != nil {
		return ci.Pipeline{}, notFound(err, "pipeline "+slug)
	}
	return p, nil
}

// Pipelines lists an organization's pipelines by slug.
func (x q) Pipelines(ctx context.Context, orgID int64) ([]ci.Pipeline, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT `+pipelineCols+` FROM pipelines WHERE org_id = $1 ORDER BY slug`, orgID)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	defer rows.Close()
	out := []ci.Pipeline{}
	for rows.Next() {
		p, err := scanPipeline(rows)
		if err != nil {
			return nil, fmt.Errorf("list pipelines: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const buildCols = `id, org_id, pipeline, number, ext_id, state, blocked, branch, commit_sha, message, tag, trigger_source,
	pr_number, pr_base, pr_repository, author_name, author_email, creator_name, creator_email, repo_key, provider, web_url,
	rebuilt_from, created_at, scheduled_at, started_at, finished_at, superseded, attempt, jobs_synced_at, last_source,
	first_seen_at, updated_at`

func scanBuild(s scanner) (ci.Build, error) {
	var b ci.Build
	var created, scheduled, started, finished, synced sql.NullInt64
	var first, updated int64
	err := s.Scan(&b.ID, &b.OrgID, &b.Pipeline, &b.Number, &b.ExtID, &b.State, &b.Blocked, &b.Branch, &b.Commit, &b.Message,
		&b.Tag, &b.TriggerSource, &b.PullRequest, &b.BaseBranch, &b.PRRepository, &b.AuthorName, &b.AuthorEmail,
		&b.CreatorName, &b.CreatorEmail, &b.RepoKey, &b.Provider, &b.WebURL, &b.RebuiltFrom, &created, &scheduled,
		&started, &finished, &b.Superseded, &b.Attempt, &synced, &b.LastSource, &first, &updated)
	b.CreatedAt, b.ScheduledAt, b.StartedAt = fromOptMicros(created), fromOptMicros(scheduled), fromOptMicros(started)
	b.FinishedAt, b.JobsSynced = fromOptMicros(finished), fromOptMicros(synced)
	b.FirstSeen, b.UpdatedAt = fromMicros(first), fromMicros(updated)
	return b, err
}

// LockBuild loads a build for update: on PostgreSQL the no-op UPDATE takes
// the row lock, so two sources ingesting the same build serialise; SQLite
// has a single writer anyway. A missing build is ci.ErrNotFound.
func (x q) LockBuild(ctx context.Context, orgID int64, pipeline string, number int) (ci.Build, error) {
	b, err := scanBuild(x.w.QueryRowContext(ctx, `UPDATE builds SET updated_at = updated_at
		WHERE org_id = $1 AND pipeline = $2 AND number = $3 RETURNING `+buildCols, orgID, pipeline, number))
	if err != nil {
		return ci.Build{}, notFound(err, fmt.Sprintf("build %s#%d", pipeline, number))
	}
	return b, nil
}

func buildArgs(b ci.Build) []any {
	return []any{b.OrgID, b.Pipeline, b.Number, b.ExtID, b.State, b.Blocked, b.Branch, b.Commit, b.Message, b.Tag,
		b.TriggerSource, b.PullRequest, b.BaseBranch, b.PRRepository, b.AuthorName, b.AuthorEmail, b.CreatorName,
		b.CreatorEmail, b.RepoKey, b.Provider, b.WebURL, b.RebuiltFrom, optMicros(b.CreatedAt), optMicros(b.ScheduledAt),
		optMicros(b.StartedAt), optMicros(b.FinishedAt), b.Superseded, b.Attempt, optMicros(b.JobsSynced), b.LastSource}
}

// InsertBuild stores a new build and returns it with its id. A build that
// already exists (same organization, pipeline and number) is ci.ErrConflict.
func (x q) InsertBuild(ctx context.Context, b ci.Build) (ci.Build, error) {
	now := fromMicros(micros(x.now()))
	b.FirstSeen, b.UpdatedAt = now, now
	args := append(buildArgs(b), micros(now), micros(now))
	err := x.w.QueryRowContext(ctx, `INSERT INTO builds (org_id, pipeline, number, ext_id, state, blocked, branch,
		commit_sha, message, tag, trigger_source, pr_number, pr_base, pr_repository, author_name, author_email, creator_name,
		creator_email, repo_key, provider, web_url, rebuilt_from, created_at, scheduled_at, started_at, finished_at,
		superseded, attempt, jobs_synced_at, last_source, first_seen_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23,
		$24, $25, $26, $27, $28, $29, $30, $31, $32) RETURNING id`, args...).Scan(&b.ID)
	if err != nil {
		return ci.Build{}, x.conflict(err, fmt.Sprintf("build %s#%d", b.Pipeline, b.Number))
	}
	return b, nil
}

// UpdateBuild overwrites a stored build (by id) with b.
func (x q) UpdateBuild(ctx context.Context, b ci.Build) (ci.Build, error) {
	b.UpdatedAt = fromMicros(micros(x.now()))
	args := append(buildArgs(b)[3:], micros(b.UpdatedAt), b.ID)
	_, err := x.w.ExecContext(ctx, `UPDATE builds SET ext_id = $1, state = $2, blocked = $3, branch = $4, commit_sha = $5,
		message = $6, tag = $7, trigger_source = $8, pr_number = $9, pr_base = $10, pr_repository = $11, author_name = $12,
		author_email = $13, creator_name = $14, creator_email = $15, repo_key = $16, provider = $17, web_url = $18,
		rebuilt_from = $19, created_at = $20, scheduled_at = $21, started_at = $22, finished_at = $23, superseded = $24,
		attempt = $25, jobs_synced_at = $26, last_source = $27, updated_at = $28 WHERE id = $29`, args...)
	if err != nil {
		return ci.Build{}, fmt.Errorf("update build %s#%d: %w", b.Pipeline, b.Number, err)
	}
	return b, nil
}

// MarkSuperseded marks every older build of b's pipeline and branch (or, for
// a pull-request build, of its pull request) superseded, and reports whether
// b itself is superseded by a newer one already stored.
func (x q) MarkSuperseded(ctx context.Context, b ci.Build) (selfSuperseded bool, err error) {
	key, arg := "branch = $4 AND pr_number = 0", any(b.Branch)
	if b.PullRequest != 0 {
		key, arg = "pr_number = $4", any(b.PullRequest)
	}
	if _, err := x.w.ExecContext(ctx, `UPDATE builds SET superseded = TRUE WHERE org_id = $1 AND pipeline = $2
		AND number < $3 AND superseded = FALSE AND `+key, b.OrgID, b.Pipeline, b.Number, arg); err != nil {
		return false, fmt.Errorf("mark builds superseded: %w", err)
	}
	var n int
	if err := x.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE org_id = $1 AND pipeline = $2 AND number > $3 AND `+key,
		b.OrgID, b.Pipeline, b.Number, arg).Scan(&n); err != nil {
		return false, fmt.Errorf("find newer builds: %w", err)
	}
	return n > 0, nil
}

// Build loads one build of an organization by id; another organization's
// build is ci.ErrNotFound.
func (x q) Build(ctx context.Context, orgID, id int64) (ci.Build, error) {
	b, err := scanBuild(x.r.QueryRowContext(ctx, `SELECT `+buildCols+` FROM builds WHERE org_id = $1 AND id = $2`, orgID, id))
	if err != nil {
		return ci.Build{}, notFound(err, "build")
	}
	return b, nil
}

// BuildByNumber loads one build by pipeline and number.
func (x q) BuildByNumber(ctx context.Context, orgID int64, pipeline string, number int) (ci.Build, error) {
	b, err := scanBuild(x.r.QueryRowContext(ctx, `SELECT `+buildCols+` FROM builds WHERE org_id = $1 AND pipeline = $2
		AND number = $3`, orgID, pipeline, number))
	if err != nil {
		return ci.Build{}, notFound(err, fmt.Sprintf("build %s#%d", pipeline, number))
	}
	return b, nil
}

// buildListKey is the builds list's sort key, newest first: when
// Buildkite created the build (when kitewatch first saw it if that is not
// known), then the build number, then the row id. Ordering by row id alone
// put builds found late by a poll or backfill above newer builds.
const buildListKey = `COALESCE(created_at, first_seen_at), number, id`

// ListBuilds returns an organization's builds matching f, newest first by
// creation time (then number, then id; see buildListKey), at most f.Limit
// (default 50, at most 500). f.BeforeID pages: it returns only the builds
// that sort after the build with that id, so pass the id of the last build
// of the previous page; an id that is not one of the organization's builds
// returns no builds.
func (x q) ListBuilds(ctx context.Context, f ci.BuildFilter) ([]ci.Build, error) {
	where := []string{"org_id = $1"}
	args := []any{f.OrgID}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Pipeline != "" {
		add("pipeline = $%d", f.Pipeline)
	}
	if f.Branch != "" {
		add("branch = $%d", f.Branch)
	}
	if f.State != "" {
		add("state = $%d", f.State)
	}
	if f.PullRequest != 0 {
		add("pr_number = $%d", f.PullRequest)
	}
	if f.Commit != "" {
		add("commit_sha = $%d", f.Commit)
	}
	if f.BeforeID != 0 {
		// Keyset paging on the whole sort key: the cursor build's key is
		// looked up in the same organization.
		add("("+buildListKey+") < (SELECT "+buildListKey+" FROM builds WHERE org_id = $1 AND id = $%d)", f.BeforeID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	args = append(args, limit)
	rows, err := x.r.QueryContext(ctx, `SELECT `+buildCols+` FROM builds WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(` ORDER BY COALESCE(created_at, first_seen_at) DESC, number DESC, id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("list builds: %w", err)
	}
	defer rows.Close()
	out := []ci.Build{}
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, fmt.Errorf("list builds: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// BuildsNeedingJobs lists finished failed builds whose job list was never
// fetched or was fetched before the build last finished, oldest first.
func (x q) BuildsNeedingJobs(ctx context.Context, orgID int64, limit int) ([]ci.Build, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT `+buildCols+` FROM builds WHERE org_id = $1 AND state = 'failed'
		AND (jobs_synced_at IS NULL OR jobs_synced_at < finished_at) ORDER BY id LIMIT $2`, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("list builds needing jobs: %w", err)
	}
	defer rows.Close()
	var out []ci.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, fmt.Errorf("list builds needing jobs: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// LatestBuilds returns, per pipeline slug, the creation time of the
// organization's newest stored build.
func (x q) LatestBuilds(ctx context.Context, orgID int64) (map[string]time.Time, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT pipeline, MAX(COALESCE(created_at, first_seen_at)) FROM builds
		WHERE org_id = $1 GROUP BY pipeline`, orgID)
	if err != nil {
		return nil, fmt.Errorf("find latest builds: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var p string
		var at int64
		if err := rows.Scan(&p, &at); err != nil {
			return nil, fmt.Errorf("find latest builds: %w", err)
		}
		out[p] = fromMicros(at)
	}
	return out, rows.Err()
}

// CountBuilds counts an organization's stored builds.
func (x q) CountBuilds(ctx context.Context, orgID int64) (int, error) {
	var n int
	if err := x.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE org_id = $1`, orgID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count builds: %w", err)
	}
	return n, nil
}

const jobCols = `id, build_id, ext_id, type, name, step_key, state, exit_status, soft_failed, retried, retried_by, retry_of,
	retry_type, parallel_index, parallel_total, web_url, started_at, finished_at, updated_at`

func scanJob(s scanner) (ci.Job, error) {
	var j ci.Job
	var exit, pi, pt, started, finished sql.NullInt64
	var updated int64
	err := s.Scan(&j.ID, &j.BuildID, &j.ExtID, &j.Type, &j.Name, &j.StepKey, &j.State, &exit, &j.SoftFailed, &j.Retried,
		&j.RetriedBy, &j.RetryOf, &j.RetryType, &pi, &pt, &j.WebURL, &started, &finished, &updated)
	j.ExitStatus, j.ParallelIndex, j.ParallelTotal = fromOptInt(exit), fromOptInt(pi), fromOptInt(pt)
	j.StartedAt, j.FinishedAt, j.UpdatedAt = fromOptMicros(started), fromOptMicros(finished), fromMicros(updated)
	return j, err
}

// Jobs lists a build's jobs in the order they were first stored.
func (x q) Jobs(ctx context.Context, buildID int64) ([]ci.Job, error) {
	rows, err := x.r.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE build_id = $1 ORDER BY id`, buildID)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	out := []ci.Job{}
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// JobsForUpdate lists a build's jobs through the write connection, for
// merging inside a transaction.
func (x q) JobsForUpdate(ctx context.Context, buildID int64) ([]ci.Job, error) {
	return q{r: x.w, w: x.w, d: x.d, now: x.now}.Jobs(ctx, buildID)
}

// SaveJob inserts or overwrites a job of a build by its Buildkite id.
func (x q) SaveJob(ctx context.Context, j ci.Job) error {
	_, err := x.w.ExecContext(ctx, `INSERT INTO jobs (build_id, ext_id, type, name, step_key, state, exit_status, soft_failed,
		retried, retried_by, retry_of, retry_type, parallel_index, parallel_total, web_url, started_at, finished_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (build_id, ext_id) DO UPDATE SET type = excluded.type, name = excluded.name, step_key = excluded.step_key,
		state = excluded.state, exit_status = excluded.exit_status, soft_failed = excluded.soft_failed,
		retried = excluded.retried, retried_by = excluded.retried_by, retry_of = excluded.retry_of,
		retry_type = excluded.retry_type, parallel_index = excluded.parallel_index, parallel_total = excluded.parallel_total,
		web_url = excluded.web_url, started_at = excluded.started_at, finished_at = excluded.finished_at,
		updated_at = excluded.updated_at`,
		j.BuildID, j.ExtID, j.Type, j.Name, j.StepKey, j.State, optInt(j.ExitStatus), j.SoftFailed, j.Retried, j.RetriedBy,
		j.RetryOf, j.RetryType, optInt(j.ParallelIndex), optInt(j.ParallelTotal), j.WebURL, optMicros(j.StartedAt),
		optMicros(j.FinishedAt), micros(x.now()))
	if err != nil {
		return fmt.Errorf("save job %s: %w", j.ExtID, err)
	}
	return nil
}

// Read-side wrappers on DB.

// Pipeline loads one pipeline by slug.
func (db *DB) Pipeline(ctx context.Context, orgID int64, slug string) (ci.Pipeline, error) {
	return db.q().Pipeline(ctx, orgID, slug)
}

// Pipelines lists an organization's pipelines.
func (db *DB) Pipelines(ctx context.Context, orgID int64) ([]ci.Pipeline, error) {
	return db.q().Pipelines(ctx, orgID)
}

// UpsertPipeline inserts or updates a pipeline.
func (db *DB) UpsertPipeline(ctx context.Context, p ci.Pipeline) (ci.Pipeline, error) {
	return db.q().UpsertPipeline(ctx, p)
}

// Build loads one build by id.
func (db *DB) Build(ctx context.Context, orgID, id int64) (ci.Build, error) {
	return db.q().Build(ctx, orgID, id)
}

// BuildByNumber loads one build by pipeline and number.
func (db *DB) BuildByNumber(ctx context.Context, orgID int64, pipeline string, number int) (ci.Build, error) {
	return db.q().BuildByNumber(ctx, orgID, pipeline, number)
}

// ListBuilds lists builds; see q.ListBuilds.
func (db *DB) ListBuilds(ctx context.Context, f ci.BuildFilter) ([]ci.Build, error) {
	return db.q().ListBuilds(ctx, f)
}

// BuildsNeedingJobs lists failed builds whose jobs must be fetched.
func (db *DB) BuildsNeedingJobs(ctx context.Context, orgID int64, limit int) ([]ci.Build, error) {
	return db.q().BuildsNeedingJobs(ctx, orgID, limit)
}

// LatestBuilds returns the newest build time per pipeline.
func (db *DB) LatestBuilds(ctx context.Context, orgID int64) (map[string]time.Time, error) {
	return db.q().LatestBuilds(ctx, orgID)
}

// CountBuilds counts an organization's builds.
func (db *DB) CountBuilds(ctx context.Context, orgID int64) (int, error) {
	return db.q().CountBuilds(ctx, orgID)
}

// Jobs lists a build's jobs.
func (db *DB) Jobs(ctx context.Context, buildID int64) ([]ci.Job, error) {
	return db.q().Jobs(ctx, buildID)
}

// Now returns the store's clock reading, for timestamps set inside a
// transaction.
func (x q) Now() time.Time { return x.now() }

// errNoRows reports whether err is sql.ErrNoRows.
func errNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
