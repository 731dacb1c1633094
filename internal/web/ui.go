package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kitewatch/kitewatch/internal/auth"
	"github.com/kitewatch/kitewatch/internal/ci"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/web/middleware"
)

//go:embed templates/*.html templates/partials/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds every template, each page parsed together with the layout and
// the partials. They are parsed once, when the first server is created (not
// at package initialisation, so CLI commands that serve no pages don't pay).
var pages = sync.OnceValue(parsePages)

var funcs = template.FuncMap{
	"timeago": timeago,
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + strings.ReplaceAll(s[1:], "_", " ")
	},
	"when":       when,
	"join":       strings.Join,
	"analysisOf": analysisOf,
	"contains": func(list []string, s string) bool {
		for _, v := range list {
			if v == s {
				return true
			}
		}
		return false
	},
}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" || base == "parts.html" {
			continue
		}
		out[strings.TrimSuffix(base, ".html")] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/partials/*.html", n))
	}
	return out
}

func timeago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return timeagoAt(t, time.Now())
}

// when is a relative time ("5 minutes ago") in a <time> element whose
// tooltip gives the date and time in UTC.
func when(t time.Time) template.HTML {
	if t.IsZero() {
		return "never"
	}
	return template.HTML(`<time datetime="` + t.UTC().Format(time.RFC3339) + `" title="` +
		t.UTC().Format("2006-01-02 15:04 UTC") + `">` + template.HTMLEscapeString(timeago(t)) + `</time>`)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// page is the data every template gets.
type page struct {
	Title string
	User  *ci.User
	Org   *ci.Org
	Role  ci.Role
	Orgs  []ci.OrgRole
	CSRF  string
	// Flash is the one-time message of the previous redirect; FlashKind is
	// "ok" or "error".
	Flash     string
	FlashKind string
	Error     string
	// Section is the top navigation entry and Sub the settings page that is
	// current, for aria-current.
	Section string
	Sub     string
	Data    any
}

func (p page) IsAdmin() bool { return p.Role == ci.RoleAdmin }

// render writes a page; templates render into a buffer first so a template
// error becomes a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := pages()[name]
	if !ok {
		s.logger.ErrorContext(r.Context(), "unknown template", "name", name)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", "name", name, "error", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) uiRoutes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /setup/{token}", originReferrer(s.setupForm))
	s.mux.HandleFunc("POST /setup/{token}", originReferrer(s.setupSubmit))
	s.mux.HandleFunc("GET /signin", originReferrer(s.signinForm)) // ?next= may hold an invitation link
	s.mux.HandleFunc("POST /signin", originReferrer(s.signinSubmit))
	s.mux.HandleFunc("POST /signout", s.signout)
	s.mux.Handle("GET /{$}", s.ui(s.home))
	s.mux.Handle("GET /orgs/{org}", s.orgUI(roleMember, s.orgHome))
	s.settingsRoutes()
	s.buildkiteRoutes()
	// Anything else is a 404 page in the UI's words (the JSON API has its
	// own under /api/).
	s.mux.HandleFunc("/", s.notFound)
}

// notFound renders the 404 page, with the navigation when signed in.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	pg := &page{}
	if sess, err := s.sessionFromCookie(r); err == nil {
		if u, err := s.db.UserByID(r.Context(), sess.UserID); err == nil {
			pg.User, pg.CSRF = &u, sess.CSRFToken
			pg.Orgs, _ = s.db.ListUserOrgs(r.Context(), u.ID)
		}
	}
	s.uiErrorFor(w, r, pg, ci.Errorf(ci.ErrNotFound, "not_found", "there is no page at this address. Check the link, or start again from kitewatch's start page"))
}

type uiHandler func(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error

// ui wraps a page that needs a signed-in user; anonymous visitors go to
// /signin. Unsafe methods must carry the session's CSRF token.
func (s *Server) ui(h uiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionFromCookie(r)
		if err != nil {
			if errors.Is(err, ci.ErrUnauthenticated) {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			s.uiError(w, r, err)
			return
		}
		u, err := s.db.UserByID(r.Context(), sess.UserID)
		if err != nil {
			s.uiError(w, r, err)
			return
		}
		p := &principal{User: u, Session: sess}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			// Parse the form first: a body over the limit is a 413 and an
			// unreadable one a 422, not a missing CSRF token (403).
			if err := parseForm(r); err != nil {
				s.uiError(w, r, err)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRFToken)) != 1 {
				s.uiError(w, r, ci.Errorf(ci.ErrForbidden, "csrf", "this form has expired: go back, reload the page and try again"))
				return
			}
		}
		orgs, err := s.db.ListUserOrgs(r.Context(), u.ID)
		if err != nil {
			s.uiError(w, r, err)
			return
		}
		pg := &page{User: &u, Orgs: orgs, CSRF: sess.CSRFToken}
		pg.FlashKind, pg.Flash = s.takeFlash(w, r)
		if err := h(w, r, p, pg); err != nil {
			s.uiErrorFor(w, r, pg, err)
		}
	})
}

// parseForm reads a posted form: a body over the limit is the body-limit
// error (413), an unreadable one ci.ErrInvalid (422).
func parseForm(r *http.Request) error {
	err := r.ParseForm()
	if err == nil || middleware.IsBodyTooLarge(err) {
		return err
	}
	return ci.Errorf(ci.ErrInvalid, "malformed_form", "the form could not be read: reload the page and try again")
}

// orgUI wraps an organization page; see orgAPI for the access rules.
func (s *Server) orgUI(need roleNeed, h uiHandler) http.Handler {
	return s.ui(func(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
		if err := s.loadOrg(r.Context(), r.PathValue("org"), need, p); err != nil {
			return err
		}
		pg.Org, pg.Role = p.Org, p.Role
		return h(w, r, p, pg)
	})
}

// uiError renders an error page with a safe message.
func (s *Server) uiError(w http.ResponseWriter, r *http.Request, err error) {
	s.uiErrorFor(w, r, &page{}, err)
}

// errorTitles are the headings of error pages, in plain words.
var errorTitles = map[int]string{
	http.StatusForbidden:       "You cannot do this",
	http.StatusNotFound:        "Page not found",
	http.StatusUnauthorized:    "Please sign in",
	http.StatusConflict:        "That did not work",
	http.StatusTooManyRequests: "Too many attempts",
}

// uiErrorFor renders an error page for a signed-in user, keeping the
// navigation of pg.
func (s *Server) uiErrorFor(w http.ResponseWriter, r *http.Request, pg *page, err error) {
	status, _, msg := errorStatus(err)
	if status >= 500 {
		s.logger.ErrorContext(r.Context(), "page failed", "route", r.Pattern, "request_id", middleware.RequestIDFrom(r.Context()), "error", err)
	}
	title, ok := errorTitles[status]
	if !ok {
		title = http.StatusText(status)
	}
	p := page{Title: title, Error: sentence(msg), Data: status, User: pg.User, Org: pg.Org, Role: pg.Role, Orgs: pg.Orgs, CSRF: pg.CSRF, Section: pg.Section}
	s.render(w, r, status, "error", p)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	if len(pg.Orgs) == 1 {
		http.Redirect(w, r, "/orgs/"+pg.Orgs[0].Org.Slug, http.StatusSeeOther)
		return nil
	}
	pg.Title = "Your organizations"
	s.render(w, r, http.StatusOK, "home", *pg)
	return nil
}

func (s *Server) orgHome(w http.ResponseWriter, r *http.Request, p *principal, pg *page) error {
	pg.Title, pg.Section = p.Org.Name, "overview"
	d, err := s.overview(r, p)
	if err != nil {
		return err
	}
	pg.Data = d
	s.render(w, r, http.StatusOK, "org", *pg)
	return nil
}

// startSession signs user in: a new session secret (rotated on every sign-in),
// stored as a hash, sent as an HttpOnly cookie.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, user ci.User) error {
	plain, hash, err := auth.NewToken(auth.PrefixSession)
	if err != nil {
		return fmt.Errorf("generate session: %w", err)
	}
	csrf, _, err := auth.NewToken("csrf")
	if err != nil {
		return fmt.Errorf("generate csrf token: %w", err)
	}
	now := s.db.Now()
	exp := now.Add(s.SessionTTL)
	if _, err := s.db.CreateSession(ctx, ci.Session{TokenHash: hash, UserID: user.ID, CSRFToken: csrf, CreatedAt: now, ExpiresAt: exp, LastSeen: now}); err != nil {
		return err
	}
	http.SetCookie(w, auth.SessionCookie(plain, exp, s.Secure))
	return nil
}

// newAccountPassword checks the rest of a new account's form (the optional
// name, the password and its repeat: the setup and invitation forms) and
// returns the password's hash.
func newAccountPassword(r *http.Request, name string) (string, error) {
	if name != "" {
		if err := validName(name); err != nil {
			return "", err
		}
	}
	pw := r.PostFormValue("password")
	if err := auth.ValidatePassword(pw); err != nil {
		return "", err
	}
	if pw != r.PostFormValue("password_confirm") {
		return "", ci.Errorf(ci.ErrInvalid, "password_mismatch", "the two passwords do not match")
	}
	return auth.HashPassword(pw)
}

// safeNext returns next when it is a path on this site, else "/". Control
// characters and spaces are refused too: browsers drop tabs and line breaks
// from URLs, so "/\t/evil.example" would otherwise leave the site as
// "//evil.example".
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f {
			return "/"
		}
	}
	return next
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) {
	if _, err := s.sessionFromCookie(r); err == nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	kind, msg := s.takeFlash(w, r)
	s.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", Flash: msg, FlashKind: kind,
		Data: map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}})
}

func clientIP(r *http.Request) string { return middleware.ClientIPFrom(r.Context()) }

func (s *Server) signinSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(r); err != nil {
		status, _, msg := errorStatus(err)
		s.render(w, r, status, "signin", page{Title: "Sign in", Error: sentence(msg), Data: map[string]string{"Next": "/"}})
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	pw := r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	data := map[string]string{"Next": next, "Email": email}
	fail := func(status int, msg string) {
		s.render(w, r, status, "signin", page{Title: "Sign in", Error: msg, Data: data})
	}
	ip := clientIP(r)
	if wait := s.signins.Check(ip, email); wait > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-in attempts. Try again in %s.", wait.Round(time.Second)+time.Second))
		return
	}
	u, err := s.db.UserByEmail(ctx, email)
	ok := false
	switch {
	case err == nil:
		ok, _ = auth.CheckPassword(u.PasswordHash, pw)
	case errors.Is(err, ci.ErrNotFound):
		auth.DummyCheck(pw) // same cost as a real check: no account enumeration by timing
	default:
		s.uiError(w, r, err)
		return
	}
	if !ok {
		s.signins.Failure(ip, email)
		if err == nil {
			s.auditUser(r, u, "signin", "user:"+email, ci.OutcomeFailure, nil)
		}
		fail(http.StatusUnauthorized, "That email and password do not match an account.")
		return
	}
	s.signins.Success(ip, email)
	if auth.NeedsRehash(u.PasswordHash) {
		if h, err := auth.HashPassword(pw); err == nil {
			_ = s.db.SetPasswordHash(ctx, u.ID, h)
		}
	}
	if err := s.startSession(ctx, w, u); err != nil {
		s.uiError(w, r, err)
		return
	}
	s.auditUser(r, u, "signin", "user:"+email, ci.OutcomeSuccess, nil)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(auth.SessionCookieName(s.Secure)); err == nil {
		sess, err := s.db.SessionByHash(r.Context(), auth.HashToken(c.Value))
		if err == nil && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRFToken)) == 1 {
			_ = s.db.DeleteSession(r.Context(), auth.HashToken(c.Value))
		}
	}
	http.SetCookie(w, auth.ClearSessionCookie(s.Secure))
	s.redirectFlash(w, r, "/signin", flashOK, "You are signed out.")
}

// NewSetupLink creates the one-time first-run link (valid for 1 hour) when no
// user exists yet, and returns its URL; it returns "" once set up.
func NewSetupLink(ctx context.Context, db *store.DB, publicURL string) (string, error) {
	n, err := db.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	plain, hash, err := auth.NewToken(auth.PrefixSetup)
	if err != nil {
		return "", fmt.Errorf("generate setup link: %w", err)
	}
	if err := db.CreateSetupLink(ctx, hash, db.Now().Add(time.Hour)); err != nil {
		return "", err
	}
	return publicURL + "/setup/" + plain, nil
}

func (s *Server) setupValid(r *http.Request) bool {
	tok := r.PathValue("token")
	if !auth.LooksLikeToken(auth.PrefixSetup, tok) {
		return false
	}
	ok, err := s.db.SetupLinkValid(r.Context(), auth.HashToken(tok))
	return err == nil && ok
}

func (s *Server) setupForm(w http.ResponseWriter, r *http.Request) {
	if !s.setupValid(r) {
		s.render(w, r, http.StatusNotFound, "error", page{Title: "Setup link not valid",
			Error: "This setup link has expired or was already used. Restart kitewatch serve to print a new one, or sign in.", Data: 404})
		return
	}
	s.render(w, r, http.StatusOK, "setup", page{Title: "Set up kitewatch", Data: map[string]string{}})
}

func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := parseForm(r); err != nil && s.setupValid(r) {
		status, _, msg := errorStatus(err)
		s.render(w, r, status, "setup", page{Title: "Set up kitewatch", Error: sentence(msg), Data: map[string]string{}})
		return
	}
	in := map[string]string{
		"OrgName": strings.TrimSpace(r.PostFormValue("org_name")),
		"OrgSlug": strings.ToLower(strings.TrimSpace(r.PostFormValue("org_slug"))),
		"Email":   strings.ToLower(strings.TrimSpace(r.PostFormValue("email"))),
		"Name":    strings.TrimSpace(r.PostFormValue("name")),
	}
	fail := func(err error) {
		status, _, msg := errorStatus(err)
		s.render(w, r, status, "setup", page{Title: "Set up kitewatch", Error: sentence(msg), Data: in})
	}
	if !s.setupValid(r) {
		s.render(w, r, http.StatusNotFound, "error", page{Title: "Setup link not valid",
			Error: "This setup link has expired or was already used. Restart kitewatch serve to print a new one, or sign in.", Data: 404})
		return
	}
	if err := ValidateOrg(in["OrgSlug"], in["OrgName"]); err != nil {
		fail(err)
		return
	}
	if err := ValidateEmail(in["Email"]); err != nil {
		fail(err)
		return
	}
	hash, err := newAccountPassword(r, in["Name"])
	if err != nil {
		fail(err)
		return
	}
	var user ci.User
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.ConsumeSetupLink(ctx, auth.HashToken(r.PathValue("token"))); err != nil {
			return err
		}
		org, err := tx.CreateOrg(ctx, in["OrgSlug"], in["OrgName"])
		if err != nil {
			return err
		}
		if user, err = tx.CreateUser(ctx, in["Email"], in["Name"], hash); err != nil {
			return err
		}
		if err := tx.AddMember(ctx, org.ID, user.ID, ci.RoleAdmin); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, ci.AuditEvent{OrgID: &org.ID, ActorID: &user.ID, Actor: user.Email, Action: "setup",
			Target: "org:" + org.Slug, Outcome: ci.OutcomeSuccess, ClientIP: clientIP(r)})
	})
	if err != nil {
		fail(err)
		return
	}
	if err := s.startSession(ctx, w, user); err != nil {
		s.uiError(w, r, err)
		return
	}
	s.redirectFlash(w, r, "/orgs/"+in["OrgSlug"], flashOK, "Welcome to kitewatch: "+in["OrgName"]+" is ready and you are its admin.")
}
