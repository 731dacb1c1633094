package bksim

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
)

// idSpace is the namespace of the simulator's name-based (v5) UUIDs, which
// keep ids stable across runs so that docs and golden files can name them.
var idSpace = uuid.MustParse("6b697465-7761-7463-6862-6b73696d0001")

func stableID(parts ...string) string {
	return uuid.NewSHA1(idSpace, []byte(strings.Join(parts, "/"))).String()
}

func graphqlID(kind, id string) string {
	return base64.StdEncoding.EncodeToString([]byte(kind + "---" + id))
}

// world is the compiled, mutable state of a server.
type world struct {
	orgs      []*org
	orgBySlug map[string]*org
	users     []*user
	userByKey map[string]*user // by email and by id
	tokens    []*token
	tokByVal  map[string]*token
	tokByName map[string]*token
	teams     []*team
	pipelines []*pipeline
	builds    []*build
	buildByID map[string]*build
	jobByID   map[string]*job
	artByID   map[string]*artifact
	suites    []*suite
	runByID   map[string]*run
}

type org struct {
	id, slug, name string
	created        time.Time
}

type user struct {
	id, name, email string
	created         time.Time
}

type token struct {
	name, purpose, value, kind, uuid, description string
	user                                          *user
	scopes                                        []string
	orgs                                          []string
	created                                       time.Time
	expires                                       *time.Time
	allowed                                       []netip.Prefix
	revoked                                       bool
}

func (t *token) hasScope(s string) bool  { return slices.Contains(t.scopes, s) }
func (t *token) canOrg(slug string) bool { return slices.Contains(t.orgs, slug) }

type team struct {
	id, slug, name, description, privacy string
	org                                  *org
	isDefault                            bool
	members                              []*user
	created                              time.Time
	createdBy                            *user
}

type pipeline struct {
	id, slug, name, description, repository, defaultBranch, visibility, configuration string
	org                                                                               *org
	provider                                                                          ProviderSpec
	tags                                                                              []string
	env                                                                               map[string]string
	steps                                                                             []map[string]any
	created                                                                           time.Time
	createdBy                                                                         *user
}

type build struct {
	id                                   string
	number                               int
	pipeline                             *pipeline
	state                                string
	blocked                              bool
	branch, commit, message, tag, source string
	creator                              *user
	author                               *AuthorSpec
	pr                                   *PullRequestSpec
	meta                                 map[string]string
	env                                  map[string]string
	created, scheduled                   time.Time
	started, failing, finished           *time.Time
	jobs                                 []*job
	annotations                          []*annotation
	runs                                 []*run
	live                                 bool // created by StartBuild; advances
	targetOutcome                        string
}

type job struct {
	id, key, typ, name, command, state string
	exit                               *int
	softFailed                         bool
	signalReason                       string
	build                              *build
	log                                logSource
	env                                map[string]string
	artifacts                          []*artifact
	retried                            bool
	retriedIn                          *job
	retrySource                        *job
	retryType                          string
	retriesCount                       int
	pgIndex, pgTotal                   *int
	matrix                             map[string]string
	agentRules                         []string
	created, scheduled                 time.Time
	runnable, started, finished        *time.Time
	plannedStart, plannedEnd           time.Time
	plannedState                       string
	plannedExit                        *int
}

type annotation struct {
	id, context, style, body, scope string
	job                             *job
	priority                        int
	created                         time.Time
}

type artifact struct {
	id, path, mime, state, sha1 string
	job                         *job
	content                     []byte
	file                        string
	size                        int64
}

type suite struct {
	id, slug, name, defaultBranch, appName string
	org                                    *org
	tests                                  []*testCase
	runs                                   []*run
}

type testCase struct {
	id, key, scope, name, location string
	labels                         []string
	passed, failed                 int
	suite                          *suite
}

type run struct {
	id, result, state string
	suite             *suite
	build             *build
	created           time.Time
	failures          []*execution
}

type execution struct {
	id       string
	test     *testCase
	reason   string
	trace    []string
	duration float64
}

// logSource is where a job's log bytes come from.
type logSource struct {
	text []byte
	file string
	gen  *loggen.Spec
}

// size returns the log length in bytes.
func (l logSource) size() (int64, error) {
	switch {
	case l.gen != nil:
		return l.gen.Len(), nil
	case l.file != "":
		fi, err := os.Stat(l.file)
		if err != nil {
			return 0, fmt.Errorf("stat job log file: %w", err)
		}
		return fi.Size(), nil
	}
	return int64(len(l.text)), nil
}

// writeTo streams the whole log.
func (l logSource) writeTo(w io.Writer) error {
	switch {
	case l.gen != nil:
		_, err := l.gen.WriteTo(w)
		return err
	case l.file != "":
		f, err := os.Open(l.file)
		if err != nil {
			return fmt.Errorf("open job log file: %w", err)
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
	_, err := w.Write(l.text)
	return err
}

// writeTail streams the last n bytes of the log. Generated logs are produced
// from the start and the prefix is discarded, so memory stays bounded.
func (l logSource) writeTail(w io.Writer, from int64) error {
	switch {
	case l.file != "":
		f, err := os.Open(l.file)
		if err != nil {
			return fmt.Errorf("open job log file: %w", err)
		}
		defer f.Close()
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return fmt.Errorf("seek job log file: %w", err)
		}
		_, err = io.Copy(w, f)
		return err
	case l.gen != nil:
		return l.writeTo(&skipWriter{w: w, skip: from})
	}
	_, err := w.Write(l.text[from:])
	return err
}

type skipWriter struct {
	w    io.Writer
	skip int64
}

func (s *skipWriter) Write(p []byte) (int, error) {
	n := len(p)
	if s.skip >= int64(n) {
		s.skip -= int64(n)
		return n, nil
	}
	p = p[s.skip:]
	s.skip = 0
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

var (
	buildStates = []string{"creating", "scheduled", "running", "passed", "failing", "failed", "blocked", "canceling", "canceled", "skipped", "not_run"}
	jobStates   = []string{"pending", "waiting", "waiting_failed", "blocked", "blocked_failed", "unblocked", "unblocked_failed", "scheduled", "assigned", "accepted", "running", "passed", "failed", "timed_out", "timing_out", "canceled", "canceling", "skipped", "broken", "expired", "limited"}
	jobTypes    = []string{"script", "waiter", "manual", "trigger"}
	tokenKinds  = map[string]string{"user": "bkua_", "token-exchange": "bktx_", "cluster": "bkct_", "agent": "bkar_", "agent-session": "bkaa_", "job": "bkaj_", "registry": "bkpt_", "portal": "bkpat_", "portal-secret": "bkps_", "suite": ""}
	// knownScopes are the REST scopes of docs managing_api_tokens.md.
	knownScopes = []string{
		"read_pipelines", "write_pipelines", "read_builds", "write_builds", "read_build_logs", "write_build_logs", "read_job_env",
		"read_artifacts", "write_artifacts", "read_agents", "write_agents", "read_clusters", "write_clusters",
		"read_pipeline_templates", "write_pipeline_templates", "read_rules", "write_rules",
		"read_organizations", "write_organizations", "read_organization_invitations", "write_organization_invitations",
		"read_organization_settings", "write_organization_settings", "read_organization_repository_connections",
		"read_notification_services", "write_notification_services", "read_teams", "write_teams", "read_user",
		"read_audit_events", "read_secrets_details", "write_secrets", "read_suites", "write_suites", "read_test_plan", "write_test_plan",
		"read_registries", "write_registries", "delete_registries", "read_packages", "write_packages", "delete_packages",
		"read_portals", "write_portals", "graphql",
	}
	finishedJobStates = []string{"passed", "failed", "timed_out", "canceled", "skipped", "broken", "expired"}
)

func isFinishedJob(s string) bool { return slices.Contains(finishedJobStates, s) }

// compile turns a scenario into server state with times resolved against now.
// With openFiles it also checks that referenced files exist.
func compile(sc *Scenario, now time.Time, openFiles bool) (*world, error) {
	now = now.UTC().Truncate(time.Millisecond)
	w := &world{
		orgBySlug: map[string]*org{}, userByKey: map[string]*user{}, tokByVal: map[string]*token{}, tokByName: map[string]*token{},
		buildByID: map[string]*build{}, jobByID: map[string]*job{}, artByID: map[string]*artifact{}, runByID: map[string]*run{},
	}
	at := func(t RelTime, def time.Duration) time.Time {
		if t.IsZero() {
			return now.Add(-def)
		}
		return t.At(now).UTC().Truncate(time.Millisecond)
	}
	for i, o := range sc.Organizations {
		p := fmt.Sprintf("organizations[%d]", i)
		if !slugRe.MatchString(o.Slug) {
			return nil, fieldErr(p+".slug", "organization slug %q must be lower-case letters, digits and dashes", o.Slug)
		}
		if w.orgBySlug[o.Slug] != nil {
			return nil, fieldErr(p+".slug", "duplicate organization %q", o.Slug)
		}
		name := o.Name
		if name == "" {
			name = o.Slug
		}
		og := &org{id: stableID("org", o.Slug), slug: o.Slug, name: name, created: at(o.CreatedAt, 400*24*time.Hour)}
		w.orgs = append(w.orgs, og)
		w.orgBySlug[o.Slug] = og
	}
	for i, u := range sc.Users {
		p := fmt.Sprintf("users[%d]", i)
		if !strings.Contains(u.Email, "@") {
			return nil, fieldErr(p+".email", "user email %q is not an address", u.Email)
		}
		if w.userByKey[u.Email] != nil {
			return nil, fieldErr(p+".email", "duplicate user %q", u.Email)
		}
		us := &user{id: stableID("user", u.Email), name: u.Name, email: u.Email, created: at(u.CreatedAt, 300*24*time.Hour)}
		w.users = append(w.users, us)
		w.userByKey[u.Email] = us
		w.userByKey[us.id] = us
	}
	findUser := func(path, key string) (*user, error) {
		if key == "" {
			if len(w.users) == 0 {
				return nil, fieldErr(path, "no users declared")
			}
			return w.users[0], nil
		}
		u := w.userByKey[key]
		if u == nil {
			return nil, fieldErr(path, "unknown user %q", key)
		}
		return u, nil
	}
	for i, ts := range sc.TokenSpecs {
		p := fmt.Sprintf("tokens[%d]", i)
		if ts.Name == "" {
			return nil, fieldErr(p+".name", "token needs a name")
		}
		if w.tokByName[ts.Name] != nil {
			return nil, fieldErr(p+".name", "duplicate token name %q", ts.Name)
		}
		kind := ts.Kind
		if kind == "" {
			kind = "user"
		}
		prefix, ok := tokenKinds[kind]
		if !ok {
			return nil, fieldErr(p+".kind", "unknown token kind %q", kind)
		}
		if ts.Value == "" || !strings.HasPrefix(ts.Value, prefix) || strings.ContainsAny(ts.Value, " \t\r\n") {
			return nil, fieldErr(p+".value", "token value must be non-empty, without spaces, and start with %q for kind %s", prefix, kind)
		}
		if w.tokByVal[ts.Value] != nil {
			return nil, fieldErr(p+".value", "token value repeats another token's")
		}
		u, err := findUser(p+".user", ts.User)
		if err != nil {
			return nil, err
		}
		for j, s := range ts.Scopes {
			if !slices.Contains(knownScopes, s) && s != "read_accounts" {
				return nil, fieldErr(fmt.Sprintf("%s.scopes[%d]", p, j), "unknown scope %q", s)
			}
		}
		for j, o := range ts.Organizations {
			if w.orgBySlug[o] == nil {
				return nil, fieldErr(fmt.Sprintf("%s.organizations[%d]", p, j), "unknown organization %q", o)
			}
		}
		tk := &token{
			name: ts.Name, purpose: ts.Purpose, value: ts.Value, kind: kind, uuid: stableID("token", ts.Name), description: ts.Description,
			user: u, scopes: slices.Clone(ts.Scopes), orgs: slices.Clone(ts.Organizations), created: at(ts.CreatedAt, 30*24*time.Hour), revoked: ts.Revoked,
		}
		if tk.description == "" {
			tk.description = ts.Name
		}
		if !ts.ExpiresAt.IsZero() {
			e := at(ts.ExpiresAt, 0)
			tk.expires = &e
		}
		for j, ip := range ts.AllowedIPs {
			pfx, err := parsePrefix(ip)
			if err != nil {
				return nil, fieldErr(fmt.Sprintf("%s.allowed_ips[%d]", p, j), "%v", err)
			}
			tk.allowed = append(tk.allowed, pfx)
		}
		w.tokens = append(w.tokens, tk)
		w.tokByVal[tk.value] = tk
		w.tokByName[tk.name] = tk
	}
	for i, ts := range sc.Teams {
		p := fmt.Sprintf("teams[%d]", i)
		og := w.orgBySlug[ts.Org]
		if og == nil {
			return nil, fieldErr(p+".org", "unknown organization %q", ts.Org)
		}
		priv := ts.Privacy
		if priv == "" {
			priv = "visible"
		}
		if priv != "visible" && priv != "secret" {
			return nil, fieldErr(p+".privacy", "privacy must be visible or secret, not %q", priv)
		}
		tm := &team{id: stableID("team", ts.Org, ts.Slug), slug: ts.Slug, name: ts.Name, description: ts.Description, privacy: priv, org: og, isDefault: ts.Default, created: og.created}
		tm.createdBy, _ = findUser("", "")
		for j, m := range ts.Members {
			u, err := findUser(fmt.Sprintf("%s.members[%d]", p, j), m)
			if err != nil {
				return nil, err
			}
			tm.members = append(tm.members, u)
		}
		w.teams = append(w.teams, tm)
	}
	pipeByRef := map[string]*pipeline{}
	for i, ps := range sc.Pipelines {
		p := fmt.Sprintf("pipelines[%d]", i)
		og := w.orgBySlug[ps.Org]
		if og == nil {
			return nil, fieldErr(p+".org", "unknown organization %q", ps.Org)
		}
		if !slugRe.MatchString(ps.Slug) {
			return nil, fieldErr(p+".slug", "pipeline slug %q must be lower-case letters, digits and dashes", ps.Slug)
		}
		ref := ps.Org + "/" + ps.Slug
		if pipeByRef[ref] != nil {
			return nil, fieldErr(p+".slug", "duplicate pipeline %q", ref)
		}
		if ps.Repository == "" {
			return nil, fieldErr(p+".repository", "pipeline needs a repository URL")
		}
		prov := ps.Provider
		if prov.ID == "" {
			prov.ID = "github"
		}
		vis := ps.Visibility
		if vis == "" {
			vis = "private"
		}
		db := ps.DefaultBranch
		if db == "" {
			db = "main"
		}
		pl := &pipeline{
			id: stableID("pipeline", ref), slug: ps.Slug, name: ps.Name, description: ps.Description, repository: ps.Repository, defaultBranch: db,
			visibility: vis, configuration: ps.Configuration, org: og, provider: prov, tags: ps.Tags, env: ps.Env, steps: ps.Steps, created: at(ps.CreatedAt, 200*24*time.Hour),
		}
		pl.createdBy, _ = findUser("", "")
		if pl.name == "" {
			pl.name = ps.Slug
		}
		w.pipelines = append(w.pipelines, pl)
		pipeByRef[ref] = pl
	}
	buildByRef := map[string]*build{}
	for i, bs := range sc.Builds {
		p := fmt.Sprintf("builds[%d]", i)
		pl := pipeByRef[bs.Pipeline]
		if pl == nil {
			return nil, fieldErr(p+".pipeline", "unknown pipeline %q (want \"org/pipeline\")", bs.Pipeline)
		}
		b, err := compileBuild(w, sc, p, pl, bs, at(bs.CreatedAt, time.Hour), now, openFiles, findUser)
		if err != nil {
			return nil, err
		}
		ref := fmt.Sprintf("%s#%d", bs.Pipeline, b.number)
		if buildByRef[ref] != nil {
			return nil, fieldErr(p+".number", "duplicate build %s", ref)
		}
		buildByRef[ref] = b
		w.addBuild(b)
	}
	for i, ss := range sc.Suites {
		p := fmt.Sprintf("suites[%d]", i)
		og := w.orgBySlug[ss.Org]
		if og == nil {
			return nil, fieldErr(p+".org", "unknown organization %q", ss.Org)
		}
		su := &suite{id: stableID("suite", ss.Org, ss.Slug), slug: ss.Slug, name: ss.Name, defaultBranch: ss.DefaultBranch, appName: ss.ApplicationName, org: og}
		if su.defaultBranch == "" {
			su.defaultBranch = "main"
		}
		tests := map[string]*testCase{}
		for j, ts := range ss.Tests {
			tp := fmt.Sprintf("%s.tests[%d]", p, j)
			if ts.Key == "" || tests[ts.Key] != nil {
				return nil, fieldErr(tp+".key", "test key %q is empty or repeated", ts.Key)
			}
			tc := &testCase{id: stableID("test", ss.Org, ss.Slug, ts.Key), key: ts.Key, scope: ts.Scope, name: ts.Name, location: ts.Location, labels: ts.Labels, passed: ts.Passed, failed: ts.Failed, suite: su}
			tests[ts.Key] = tc
			su.tests = append(su.tests, tc)
		}
		for j, rs := range ss.Runs {
			rp := fmt.Sprintf("%s.runs[%d]", p, j)
			b := buildByRef[rs.Build]
			if b == nil {
				return nil, fieldErr(rp+".build", "unknown build %q (want \"org/pipeline#number\")", rs.Build)
			}
			if !slices.Contains([]string{"pending", "passed", "failed", "stale"}, rs.Result) {
				return nil, fieldErr(rp+".result", "result must be pending, passed, failed or stale, not %q", rs.Result)
			}
			state := "finished"
			if rs.Result == "pending" {
				state = "running"
			}
			rn := &run{id: stableID("run", su.id, rs.Build), result: rs.Result, state: state, suite: su, build: b, created: b.created.Add(30 * time.Second)}
			for k, fs := range rs.Failures {
				tc := tests[fs.Test]
				if tc == nil {
					return nil, fieldErr(fmt.Sprintf("%s.failures[%d].test", rp, k), "unknown test key %q", fs.Test)
				}
				rn.failures = append(rn.failures, &execution{id: stableID("execution", rn.id, fs.Test), test: tc, reason: fs.Reason, trace: fs.Backtrace, duration: fs.Duration})
			}
			su.runs = append(su.runs, rn)
			b.runs = append(b.runs, rn)
			w.runByID[rn.id] = rn
		}
		w.suites = append(w.suites, su)
	}
	for i, wh := range sc.Webhooks {
		p := fmt.Sprintf("webhooks[%d]", i)
		if _, err := (&WebhookConfig{URL: wh.URL, Token: wh.Token, Mode: wh.Mode, Events: wh.Events, Pipelines: wh.Pipelines}).validate(); err != nil {
			return nil, fieldErr(p, "%v", err)
		}
	}
	return w, nil
}

func (w *world) addBuild(b *build) {
	w.builds = append(w.builds, b)
	w.buildByID[b.id] = b
	for _, j := range b.jobs {
		w.jobByID[j.id] = j
		for _, a := range j.artifacts {
			w.artByID[a.id] = a
		}
	}
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad IP address %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func compileBuild(w *world, sc *Scenario, p string, pl *pipeline, bs BuildSpec, created, now time.Time, openFiles bool, findUser func(string, string) (*user, error)) (*build, error) {
	if bs.Number <= 0 {
		return nil, fieldErr(p+".number", "build number must be positive")
	}
	if !slices.Contains(buildStates, bs.State) {
		return nil, fieldErr(p+".state", "unknown build state %q (want one of %s)", bs.State, strings.Join(buildStates, ", "))
	}
	if bs.Branch == "" {
		return nil, fieldErr(p+".branch", "build needs a branch")
	}
	commit := bs.Commit
	if commit == "" {
		sum := sha1.Sum([]byte(pl.id + fmt.Sprint(bs.Number)))
		commit = hex.EncodeToString(sum[:])
	}
	src := bs.Source
	if src == "" {
		src = "webhook"
	}
	creator, err := findUser(p+".creator", bs.Creator)
	if err != nil {
		return nil, err
	}
	b := &build{
		id: stableID("build", pl.org.slug, pl.slug, fmt.Sprint(bs.Number)), number: bs.Number, pipeline: pl, state: bs.State, blocked: bs.Blocked,
		branch: bs.Branch, commit: commit, message: bs.Message, tag: bs.Tag, source: src, creator: creator, author: bs.Author, pr: bs.PullRequest,
		meta: bs.MetaData, env: bs.Env, created: created, scheduled: created,
	}
	if b.message == "" {
		b.message = "Update " + pl.name
	}
	if b.author == nil {
		b.author = &AuthorSpec{Name: creator.name, Email: creator.email}
	}
	byKey := map[string]*job{}
	for i, js := range bs.Jobs {
		jp := fmt.Sprintf("%s.jobs[%d]", p, i)
		if js.Key == "" || byKey[js.Key] != nil {
			return nil, fieldErr(jp+".key", "job key %q is empty or repeated in this build", js.Key)
		}
		typ := js.Type
		if typ == "" {
			typ = "script"
		}
		if !slices.Contains(jobTypes, typ) {
			return nil, fieldErr(jp+".type", "unknown job type %q", typ)
		}
		if !slices.Contains(jobStates, js.State) {
			return nil, fieldErr(jp+".state", "unknown job state %q (want one of %s)", js.State, strings.Join(jobStates, ", "))
		}
		j := &job{
			id: stableID("job", b.id, js.Key), key: js.Key, typ: typ, name: js.Name, command: js.Command, state: js.State, softFailed: js.SoftFailed,
			signalReason: js.SignalReason, build: b, env: js.Env, pgIndex: js.ParallelGroupIndex, pgTotal: js.ParallelGroupTotal, matrix: js.Matrix,
			agentRules: js.AgentQueryRules, created: created, scheduled: created, retryType: js.RetryType,
		}
		if j.agentRules == nil && typ == "script" {
			j.agentRules = []string{"queue=default"}
		}
		startAfter, dur := time.Duration(js.StartAfter), time.Duration(js.Duration)
		if startAfter == 0 {
			startAfter = 20 * time.Second
		}
		if dur == 0 {
			dur = 3 * time.Minute
		}
		j.plannedStart = created.Add(startAfter)
		j.plannedEnd = j.plannedStart.Add(dur)
		if typ == "script" && !slices.Contains([]string{"pending", "waiting", "blocked", "scheduled", "skipped", "broken", "canceled", "expired", "limited", "waiting_failed"}, js.State) {
			r := j.plannedStart.Add(-5 * time.Second)
			st := j.plannedStart
			j.runnable, j.started = &r, &st
		}
		if isFinishedJob(js.State) && j.started != nil {
			e := j.plannedEnd
			j.finished = &e
		}
		if js.Log != nil {
			src, err := compileLog(sc, jp+".log", js.Log, openFiles)
			if err != nil {
				return nil, err
			}
			j.log = src
			if src.gen != nil {
				g := *src.gen
				g.Start = j.plannedStart
				g.Repository = pl.repository
				g.Commit = commit
				if g.Command == "" {
					g.Command = js.Command
				}
				j.log.gen = &g
			}
		} else if typ == "script" && j.started != nil {
			failure := ""
			if js.State == "failed" || js.State == "timed_out" {
				failure = "test"
			}
			j.log.gen = &loggen.Spec{Ecosystem: "go", Failure: failure, Seed: uint64(len(j.id)) + uint64(bs.Number), Start: j.plannedStart, Command: js.Command, Repository: pl.repository, Commit: commit}
		}
		if js.ExitStatus != nil {
			j.exit = js.ExitStatus
		} else if typ == "script" && isFinishedJob(js.State) && j.started != nil {
			e := 0
			switch {
			case j.log.gen != nil:
				e = j.log.gen.ExitStatus()
			case js.State != "passed":
				e = 1
			}
			j.exit = &e
		}
		for k, as := range js.Artifacts {
			ap := fmt.Sprintf("%s.artifacts[%d]", jp, k)
			a, err := compileArtifact(sc, ap, j, as, openFiles)
			if err != nil {
				return nil, err
			}
			j.artifacts = append(j.artifacts, a)
		}
		if js.RetryOf != "" {
			orig := byKey[js.RetryOf]
			if orig == nil {
				return nil, fieldErr(jp+".retry_of", "retry_of %q names no earlier job of this build", js.RetryOf)
			}
			orig.retried, orig.retriedIn = true, j
			j.retrySource = orig
			j.retriesCount = orig.retriesCount + 1
			if j.retryType == "" {
				j.retryType = "automatic"
			}
			if j.name == "" {
				j.name = orig.name
			}
		}
		byKey[js.Key] = j
		b.jobs = append(b.jobs, j)
	}
	for _, j := range b.jobs {
		if j.started != nil && (b.started == nil || j.started.Before(*b.started)) {
			s := *j.started
			b.started = &s
		}
	}
	if slices.Contains([]string{"passed", "failed", "canceled", "skipped", "not_run", "blocked"}, b.state) {
		end := created.Add(time.Minute)
		for _, j := range b.jobs {
			if j.finished != nil && j.finished.After(end) {
				end = *j.finished
			}
		}
		if b.started == nil && b.state != "skipped" && b.state != "not_run" {
			s := created.Add(10 * time.Second)
			b.started = &s
		}
		b.finished = &end
	}
	if b.state == "failed" || b.state == "failing" {
		for _, j := range b.jobs {
			if j.state == "failed" && !j.softFailed && j.finished != nil && (b.failing == nil || j.finished.Before(*b.failing)) {
				f := *j.finished
				b.failing = &f
			}
		}
	}
	for i, as := range bs.Annotations {
		ap := fmt.Sprintf("%s.annotations[%d]", p, i)
		if !slices.Contains([]string{"info", "success", "warning", "error"}, as.Style) {
			return nil, fieldErr(ap+".style", "style must be info, success, warning or error, not %q", as.Style)
		}
		an := &annotation{id: stableID("annotation", b.id, as.Context), context: as.Context, style: as.Style, body: as.BodyHTML, scope: "build", priority: as.Priority, created: created.Add(2 * time.Minute)}
		if an.priority == 0 {
			an.priority = 3
		}
		if as.Job != "" {
			an.job = byKey[as.Job]
			if an.job == nil {
				return nil, fieldErr(ap+".job", "unknown job key %q", as.Job)
			}
			an.scope = "job"
		}
		b.annotations = append(b.annotations, an)
	}
	return b, nil
}

func compileLog(sc *Scenario, p string, ls *LogSpec, openFiles bool) (logSource, error) {
	// Text may be empty (an empty log); file and generate exclude the others.
	n := 0
	if ls.File != "" {
		n++
	}
	if ls.Generate != nil {
		n++
	}
	if n > 1 || (n == 1 && ls.Text != "") {
		return logSource{}, fieldErr(p, "a log takes only one of text, file or generate")
	}
	switch {
	case ls.Generate != nil:
		if err := ls.Generate.Validate(); err != nil {
			return logSource{}, fieldErr(p+".generate", "%v", err)
		}
		g := *ls.Generate
		return logSource{gen: &g}, nil
	case ls.File != "":
		path := ls.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(sc.dir, path)
		}
		if openFiles {
			if _, err := os.Stat(path); err != nil {
				return logSource{}, fieldErr(p+".file", "log file: %v", err)
			}
		}
		return logSource{file: path}, nil
	}
	return logSource{text: []byte(ls.Text)}, nil
}

func compileArtifact(sc *Scenario, p string, j *job, as ArtifactSpec, openFiles bool) (*artifact, error) {
	if as.Path == "" {
		return nil, fieldErr(p+".path", "artifact needs a path")
	}
	state := as.State
	if state == "" {
		state = "finished"
	}
	if !slices.Contains(artifactStates, state) {
		return nil, fieldErr(p+".state", "unknown artifact state %q", state)
	}
	a := &artifact{id: stableID("artifact", j.id, as.Path), path: as.Path, mime: as.MimeType, state: state, job: j}
	if a.mime == "" {
		a.mime = mimeFor(as.Path)
	}
	if as.File != "" {
		a.file = as.File
		if !filepath.IsAbs(a.file) {
			a.file = filepath.Join(sc.dir, a.file)
		}
		if openFiles {
			data, err := os.ReadFile(a.file)
			if err != nil {
				return nil, fieldErr(p+".file", "artifact file: %v", err)
			}
			a.content = data
		}
	} else {
		a.content = []byte(as.Content)
	}
	sum := sha1.Sum(a.content)
	a.sha1 = hex.EncodeToString(sum[:])
	a.size = int64(len(a.content))
	return a, nil
}

var artifactStates = []string{"new", "error", "finished", "deleted", "expired"}

func mimeFor(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".xml":
		return "application/xml"
	case ".json":
		return "application/json"
	case ".html":
		return "text/html"
	case ".txt", ".log":
		return "text/plain"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// demoTokenValue derives a realistic, stable bkua_ token from a name.
func demoTokenValue(prefix, name string) string {
	sum := sha1.Sum([]byte("kitewatch-sim/" + name))
	return prefix + hex.EncodeToString(sum[:])
}
