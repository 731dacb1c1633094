package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kitewatch/kitewatch/internal/app"
	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/config"
	"github.com/kitewatch/kitewatch/internal/secrets"
	"github.com/kitewatch/kitewatch/internal/store"
	"github.com/kitewatch/kitewatch/internal/store/sqlite"
	"github.com/kitewatch/kitewatch/internal/testenv"
)

// screenshots makes TestBrowser write a PNG of each UI state into
// docs/screenshots: go test ./internal/web -run TestBrowser -screenshots
var screenshots = flag.Bool("screenshots", false, "write screenshots of each UI state to docs/screenshots")

// syncBuffer is a goroutine-safe writer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// uiServer is a whole kitewatch server on loopback, talking to the
// Buildkite simulator on loopback.
type uiServer struct {
	URL       string
	SetupPath string
	Sim       *bksim.Server
	Logs      *syncBuffer
}

func startUIServer(t *testing.T) *uiServer {
	t.Helper()
	// Generous rate limits: these walks click through more than a person
	// would in a minute, and the background poll and analyses that
	// connecting starts share the token's window. Rate limiting itself is
	// tested in the poller, analysis and integration packages.
	sim := bksim.New(bksim.Demo(), bksim.WithRateLimits(2000, 1000))
	hs := httptest.NewServer(sim)
	t.Cleanup(func() { hs.Close(); sim.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.BuildkiteAPIURL = hs.URL
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keeper, err := secrets.NewLocalKeeper(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.NewKeyring(secrets.NamedKeeper{ID: "test", Keeper: keeper})
	if err != nil {
		t.Fatal(err)
	}
	logs, out := &syncBuffer{}, &syncBuffer{}
	db, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Deps{DB: db, Logger: slog.New(slog.NewTextHandler(logs, nil)), Out: out, Keys: keys, BuildkiteHTTP: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	// The setup link is printed once the server runs.
	re := regexp.MustCompile(`/setup/kwsetup_[A-Za-z0-9_-]+`)
	deadline := time.Now().Add(10 * time.Second)
	for !re.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no setup link printed: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &uiServer{URL: a.URL(), SetupPath: re.FindString(out.String()), Sim: sim, Logs: logs}
}

// browser drives one headless Chromium tab. After every page it checks
// that no secret in forbidden appears in the page's HTML.
type browser struct {
	t         *testing.T
	ctx       context.Context
	base      string
	forbidden []string
	pages     int
}

func newBrowser(t *testing.T, base, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base}
}

// open navigates to path and returns the HTTP status.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(b.base+path))
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	b.checkPage()
	return resp.Status
}

// click clicks the element and waits for the page it leads to; it returns
// that page's HTTP status.
func (b *browser) click(sel string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
	b.checkPage()
	return resp.Status
}

// toggle clicks an element that does not leave the page (a checkbox, a
// disclosure).
func (b *browser) toggle(sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

// typeInto types text into a field, as a user would.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible)); err != nil {
		b.t.Fatalf("type into %s: %v", sel, err)
	}
}

// eval runs a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// count is the number of elements matching a CSS selector.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf("document.querySelectorAll(%q).length", sel))
}

// text is the visible text of the first element matching sel, with runs of
// white space folded to one space.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s := eval[string](b, fmt.Sprintf("(document.querySelector(%q) || {innerText: ''}).innerText", sel))
	return strings.Join(strings.Fields(s), " ")
}

// says fails the test unless the page's visible text contains every phrase.
func (b *browser) says(phrases ...string) {
	b.t.Helper()
	body := b.text("body")
	for _, p := range phrases {
		if !strings.Contains(body, p) {
			b.t.Fatalf("page %s does not say %q; it says:\n%s", b.location(), p, body)
		}
	}
}

// doesNotSay fails the test if the page's visible text contains a phrase.
func (b *browser) doesNotSay(phrases ...string) {
	b.t.Helper()
	body := b.text("body")
	for _, p := range phrases {
		if strings.Contains(body, p) {
			b.t.Fatalf("page %s says %q, and should not; it says:\n%s", b.location(), p, body)
		}
	}
}

func (b *browser) location() string {
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	return strings.TrimPrefix(loc, b.base)
}

// html returns the whole document's HTML.
func (b *browser) html() string {
	b.t.Helper()
	h, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("read page HTML: %v", err)
	}
	return h
}

// checkPage searches the current page's HTML for every forbidden secret.
func (b *browser) checkPage() {
	b.t.Helper()
	b.pages++
	h := b.html()
	for _, s := range b.forbidden {
		if strings.Contains(h, s) {
			b.t.Fatalf("page %s contains a secret (%.8s…)", b.location(), s)
		}
	}
}

// shot saves a screenshot of the page when -screenshots is set.
func (b *browser) shot(name string) {
	b.t.Helper()
	if !*screenshots {
		return
	}
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	small, err := compactPNG(shot)
	if err != nil {
		b.t.Fatalf("compress screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), small, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// maxShotHeight is the tallest screenshot kept, in pixels.
const maxShotHeight = 2200

// compactPNG re-encodes a screenshot with a palette of its 256 most used
// colours, which keeps UI screenshots (flat colours, anti-aliased text)
// looking the same at a third of the size.
func compactPNG(in []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	// Long pages are cut after maxShotHeight: the top is what a reader
	// needs, and the panels further down have their own shots.
	if b := img.Bounds(); b.Dy() > maxShotHeight {
		img = img.(interface {
			SubImage(image.Rectangle) image.Image
		}).SubImage(image.Rect(b.Min.X, b.Min.Y, b.Max.X, b.Min.Y+maxShotHeight))
	}
	bounds := img.Bounds()
	counts := map[color.RGBA]int{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colors := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colors = append(colors, c)
	}
	slices.SortFunc(colors, func(a, b color.RGBA) int {
		if n := counts[b] - counts[a]; n != 0 {
			return n
		}
		return int(a.R)<<16 | int(a.G)<<8 | int(a.B) - (int(b.R)<<16 | int(b.G)<<8 | int(b.B))
	})
	pal := make(color.Palette, 0, 256)
	for _, c := range colors[:min(256, len(colors))] {
		pal = append(pal, c)
	}
	index := map[color.RGBA]uint8{}
	for _, c := range colors {
		index[c] = uint8(pal.Index(c))
	}
	out := image.NewPaletted(bounds, pal)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			out.SetColorIndex(x, y, index[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)])
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// viewport switches the page width (and height) for the following steps.
func (b *browser) viewport(w, h int64, mobile bool) {
	b.t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateScale(1), chromedp.EmulateMobile)
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(w, h, opts...)); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) signIn(email, password string) {
	b.t.Helper()
	b.open("/signin")
	b.typeInto("#email", email)
	b.typeInto("#password", password)
	b.click("form[action='/signin'] button[type=submit]")
}

func (b *browser) signOut() {
	b.t.Helper()
	b.click("form[action='/signout'] button")
	b.says("You are signed out.")
}

// reload reloads the page as the browser's reload button does and returns
// the HTTP status.
func (b *browser) reload() int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Reload())
	if err != nil {
		b.t.Fatalf("reload %s: %v", b.location(), err)
	}
	b.checkPage()
	return resp.Status
}

// phoneWidth is the width of the phone viewport the walks use.
const phoneWidth = 390

// fitsPhone opens each page at the current (phone) width and fails unless
// the page is no wider than the screen: nothing to scroll sideways.
func (b *browser) fitsPhone(paths ...string) {
	b.t.Helper()
	for _, p := range paths {
		b.open(p)
		// Compared with the emulated 390 px: a mobile layout viewport grows
		// to fit content that overflows, so innerWidth would move with it.
		sw, iw := eval[int](b, "document.scrollingElement.scrollWidth"), phoneWidth
		if sw > iw {
			wide := eval[string](b, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).slice(0, 5).map(e => e.tagName + "." + e.className).join(" ")`)
			b.t.Fatalf("%s is %d px wide on a %d px screen: %s", p, sw, iw, wide)
		}
	}
}

// tokenChecks counts the simulator's token look-ups and revocations.
func tokenChecks(sim *bksim.Server) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Path == "/v2/access-token" {
			n++
		}
	}
	return n
}

// deletes counts the simulator's token revocations, by token name.
func deletes(sim *bksim.Server) map[string]int {
	out := map[string]int{}
	for _, r := range sim.Requests() {
		if r.Method == "DELETE" && r.Path == "/v2/access-token" {
			out[r.Token]++
		}
	}
	return out
}

const (
	adminEmail     = "admin@acme.test"
	adminPassword  = "correct horse battery staple"
	memberEmail    = "member@acme.test"
	memberPassword = "member password 12345"
	bkPage         = "/orgs/acme/settings/integrations/buildkite"
)

// TestBrowser walks the UI in Chromium as a new admin would: first-run
// setup, sign-in, connecting Buildkite with bad tokens then a good one,
// verify, rotate, losing a scope, disconnect, members and API tokens, and
// finally a member who may look but not change anything. Every step
// asserts what the page says.
func TestBrowser(t *testing.T) {
	chromium := testenv.Chromium(t)
	srv := startUIServer(t)
	b := newBrowser(t, srv.URL, chromium)
	for _, tok := range bksim.Demo().Tokens() {
		b.forbidden = append(b.forbidden, tok.Value)
	}
	tok := bksim.DemoTokenValue

	// First-run setup from the printed link.
	b.open(srv.SetupPath)
	b.says("Set up kitewatch", "Create your organization")
	b.shot("setup")
	b.typeInto("#org_name", "Acme Inc")
	b.typeInto("#org_slug", "acme")
	b.typeInto("#name", "Ada Admin")
	b.typeInto("#email", adminEmail)
	b.typeInto("#password", adminPassword)
	b.typeInto("#password_confirm", adminPassword)
	b.click("form button[type=submit]")
	b.says("Welcome to kitewatch: Acme Inc is ready", "Get started: connect your Buildkite organization", "Not connected")
	if b.location() != "/orgs/acme" {
		t.Fatalf("after setup at %s, want /orgs/acme", b.location())
	}
	// The link works once.
	if st := b.open(srv.SetupPath); st != 404 {
		t.Fatalf("setup link reused: status %d", st)
	}
	b.says("This setup link has expired or was already used")

	// Sign out and in again; a wrong password says nothing about the account.
	b.open("/orgs/acme")
	b.signOut()
	b.signIn(adminEmail, "wrong password here")
	b.says("Could not sign in.", "That email and password do not match an account.")
	b.signIn("nobody@acme.test", "wrong password here")
	b.says("That email and password do not match an account.")
	b.shot("signin-failed")
	b.signIn(adminEmail, adminPassword)
	b.says("Acme Inc", "You are an admin of this organization.")

	// Settings → Integrations → Buildkite, not connected.
	b.click("nav.topnav a[href='/orgs/acme/settings/integrations']")
	b.says("Integrations", "Buildkite", "Not connected", "Needs an API access token with 9 read scopes.")
	b.shot("integrations-not-connected")
	b.click(".integration a.button")
	b.says("Buildkite", "Not connected", "1. Create an API access token in Buildkite", "Use a service account",
		"Set an expiry you will rotate", "The 9 required scopes", "2. Paste the token", "API token", "Buildkite organization (optional)")
	for _, sc := range []string{"read_teams", "read_artifacts", "read_builds", "read_job_env", "read_build_logs",
		"read_organizations", "read_pipelines", "read_user", "read_suites"} {
		b.says(sc)
	}
	b.says("to download the logs of failed jobs to explain them", "to read Test Engine runs and failed tests")
	if n := b.count("a[href='https://buildkite.com/user/api-access-tokens']"); n == 0 {
		t.Fatal("no link to Buildkite's API access tokens page")
	}
	attrs := eval[string](b, `["type","autocomplete","spellcheck","required"].map(a => a + "=" + document.querySelector("#bk-token").getAttribute(a)).join(" ")`)
	if attrs != "type=password autocomplete=off spellcheck=false required=" {
		t.Fatalf("token field attributes: %s", attrs)
	}
	b.shot("buildkite-not-connected")

	// A token missing read_build_logs and read_suites.
	b.typeInto("#bk-token", tok("missing-scopes"))
	if st := b.click("#connect button[type=submit]"); st != 200 || !strings.HasPrefix(b.location(), bkPage+"?attempt=") {
		t.Fatalf("connect with missing scopes: status %d at %s, want 200 at the result page after a redirect", st, b.location())
	}
	b.says("Buildkite did not accept this token", "Nothing was saved.", "What to do:", "Give the token all 9 scopes", "2 of 9 required scopes missing", "Try again")
	// Reloading the result shows it again without sending the token again.
	checks := tokenChecks(srv.Sim)
	if st := b.reload(); st != 200 {
		t.Fatalf("reload of the failed result: status %d", st)
	}
	b.says("Buildkite did not accept this token", "2 of 9 required scopes missing")
	if n := tokenChecks(srv.Sim); n != checks {
		t.Fatalf("reloading the failed result asked Buildkite again (%d token checks, was %d)", n, checks)
	}
	for _, sc := range []string{"read_build_logs", "read_suites"} {
		row := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll(".result li.scope")].filter(li => li.querySelector("code").textContent == %q).map(li => li.innerText.replace(/\s+/g, " ")).join("")`, sc))
		if !strings.Contains(row, "✗") || !strings.Contains(strings.ToLower(row), "missing") {
			t.Fatalf("scope %s row says %q, want it marked ✗ missing", sc, row)
		}
	}
	if n := b.count(".result li.scope.ok"); n != 7 {
		t.Fatalf("%d scopes marked granted, want 7", n)
	}
	if v := eval[string](b, `document.querySelector("#bk-token").value`); v != "" {
		t.Fatalf("token field refilled with %d characters", len(v))
	}
	b.shot("buildkite-failed-missing-scopes")

	// An expired token.
	b.typeInto("#bk-token", tok("expired"))
	if st := b.click("#connect button[type=submit]"); st != 200 {
		t.Fatalf("connect with expired token: status %d, want 200 after the redirect", st)
	}
	b.says("Buildkite did not accept this token", "expired", "Check the token's expiry date", "an expired token cannot be extended", "token_invalid",
		"kitewatch could not read this token's scopes")
	b.doesNotSay("read_build_logs missing")
	b.shot("buildkite-failed-expired")

	// The good token.
	b.typeInto("#bk-token", tok("good"))
	if st := b.click("#connect button[type=submit]"); st != 200 {
		t.Fatalf("connect with good token: status %d", st)
	}
	b.says("Buildkite is connected", "the token passed every check", "Connected", "Buildkite organization", "Token owner",
		"9 of 9 required scopes granted", "passed every check", "Verify now", "Rotate token", "Disconnect Buildkite…")
	if n := b.count("li.scope.ok"); n != 9 {
		t.Fatalf("%d scopes ticked, want 9", n)
	}
	if !regexp.MustCompile(`expires in (89|90) days`).MatchString(b.text("body")) {
		t.Fatalf("no expiry countdown: %s", b.text(".facts"))
	}
	b.shot("buildkite-connected")
	b.viewport(390, 844, true)
	b.open(bkPage)
	b.says("Connected", "9 of 9 required scopes granted")
	b.shot("buildkite-connected-phone")
	b.fitsPhone("/orgs/acme", "/orgs/acme/builds", "/orgs/acme/settings/integrations", "/orgs/acme/settings/tokens")
	b.viewport(1280, 900, false)

	// Verify now.
	b.open(bkPage)
	b.click("form[action$='/verify'] button")
	b.says("Verified just now: the token passed every check.", "Recent checks", "Manual")

	// Rotate to the token that expires soon, revoking the previous one.
	b.typeInto("#rotate-token", tok("expiring-soon"))
	b.toggle("#rotate input[name=revoke_previous]")
	b.click("#rotate button[type=submit]")
	b.says("Rotated: kitewatch now uses the new token.", "The previous token was revoked at Buildkite.", "Warnings", "Connected")
	if !regexp.MustCompile(`expires in [45] days`).MatchString(b.text(".facts")) {
		t.Fatalf("rotated token's expiry not shown: %s", b.text(".facts"))
	}
	b.says("token_expiring_soon", "rotate to it before it expires")
	if d := deletes(srv.Sim); d["good"] != 1 || len(d) != 1 {
		t.Fatalf("revocations after rotate: %v, want one of the good token", d)
	}
	b.shot("buildkite-connected-warning")

	// The token loses a scope at Buildkite: the next check says what changed.
	if err := srv.Sim.SetTokenScopes("expiring-soon", slices.DeleteFunc(slices.Clone(bksim.ReadScopes), func(s string) bool { return s == "read_suites" })); err != nil {
		t.Fatal(err)
	}
	b.click("form[action$='/verify'] button")
	b.says("Verified just now: the token has problems.", "Needs attention", "What changed", "read_suites", "rotate to it")
	if b.count("#rotate input[name=token]") != 1 || b.count("a[href='#rotate']") != 1 {
		t.Fatal("needs attention page does not lead to the rotate form")
	}
	b.shot("buildkite-needs-attention")
	if err := srv.Sim.SetTokenScopes("expiring-soon", bksim.ReadScopes); err != nil {
		t.Fatal(err)
	}
	b.click("form[action$='/verify'] button")
	b.says("Verified just now: the token passed every check.", "9 of 9 required scopes granted")
	b.doesNotSay("What changed")

	// Disconnect, revoking at Buildkite, after a confirmation step.
	b.click("a[href$='/buildkite/disconnect']")
	b.says("Disconnect Buildkite?", "Also revoke the token at Buildkite", "Cancel")
	if !eval[bool](b, `document.querySelector("input[name=revoke]").checked`) {
		t.Fatal("revoke is not ticked by default")
	}
	b.shot("buildkite-disconnect-confirm")
	b.click("form[action$='/disconnect'] button.danger")
	b.says("Buildkite is disconnected: the token was revoked at Buildkite", "Disconnected", "Connect Buildkite")
	if d := deletes(srv.Sim); d["good"] != 1 || d["expiring-soon"] != 1 || len(d) != 2 {
		t.Fatalf("revocations after disconnect: %v, want exactly one DELETE /v2/access-token for the disconnected token", d)
	}
	b.shot("buildkite-disconnected")

	// Connect again, with a token that has more scopes than needed.
	b.typeInto("#bk-token", tok("write-scopes"))
	b.click("#connect button[type=submit]")
	b.says("Buildkite is connected", "Warnings", "excess_scopes", "For least privilege")

	// Members: invite one. The link is shown once; the invitee opens it in
	// their own browser, chooses a password and lands in the organization.
	b.click("nav.subnav a[href$='/settings/members']")
	b.says("Members", "Ada Admin", "(you)", "Invite a member", "No pending invitations.")
	b.typeInto("#m-email", adminEmail)
	b.click("form[action$='/settings/members'] button[type=submit]")
	b.says("Could not invite.", adminEmail+" is already a member")
	if v := eval[string](b, `document.querySelector("#m-email").value`); v != adminEmail {
		t.Fatalf("email not kept after a failed invitation: %q", v)
	}
	eval[chromedp.Void](b, `document.querySelector("#m-email").value = ""`)
	link := b.inviteLink(memberEmail, "member")
	b.shot("members-invited")
	b.forbidden = append(b.forbidden, strings.TrimPrefix(link, "/invite/"))
	b.open("/orgs/acme/settings/members")
	b.says("Pending invitations", memberEmail, adminEmail, "Revoke…")
	invitee := newBrowser(t, srv.URL, chromium)
	invitee.forbidden = b.forbidden
	invitee.open(link)
	invitee.says("Join Acme Inc as a member", memberEmail, "choose your own password")
	invitee.shot("invite-new-account")
	invitee.joinByInvitation(link, "Max Member", memberPassword)
	invitee.says("You are a member of this organization.")
	if invitee.location() != "/orgs/acme" {
		t.Fatalf("after joining at %s, want /orgs/acme", invitee.location())
	}
	if st := invitee.open(link); st != 404 {
		t.Fatalf("used invitation link: status %d", st)
	}
	invitee.says("This invitation link is not valid any more", "Ask an admin of the organization for a new one.")
	b.open("/orgs/acme/settings/members")
	b.says("Max Member", "Make admin", "No pending invitations.")
	b.shot("members")

	// API tokens: created, shown once, revoked.
	b.click("nav.subnav a[href$='/settings/tokens']")
	b.says("API tokens", "You have no API tokens yet.")
	b.typeInto("#t-name", "laptop CLI")
	b.click("form[action$='/settings/tokens'] button[type=submit]")
	b.says("Token “laptop CLI” created", "Copy it now: this is the only time kitewatch shows it.")
	kwTok := eval[string](b, `document.querySelector("#new-token").value`)
	if !strings.HasPrefix(kwTok, "kw_") {
		t.Fatalf("created token field holds %q", kwTok)
	}
	b.shot("api-token-created")
	b.open("/orgs/acme/settings/tokens")
	if strings.Contains(b.html(), kwTok) {
		t.Fatal("the API token is shown again after creation")
	}
	b.forbidden = append(b.forbidden, kwTok)
	b.says("laptop CLI", "never")
	b.toggle("details.confirm summary")
	b.click("form[action$='/revoke'] button")
	b.says("Revoked the API token “laptop CLI”.", "Revoked")

	// Audit log.
	b.click("nav.subnav a[href$='/settings/audit']")
	b.says("Audit log", "buildkite.connect", "buildkite.rotate", "buildkite.disconnect", "member.invite", "member.join", adminEmail)
	b.shot("audit-log")
	b.viewport(390, 844, true)
	b.fitsPhone("/orgs/acme/settings/audit", bkPage, "/no/such/page")
	b.viewport(1280, 900, false)

	// A member sees the status but no forms, and cannot post.
	b.signOut()
	b.signIn(memberEmail, memberPassword)
	b.says("You are a member of this organization.")
	b.open(bkPage)
	b.says("Connected", "Buildkite organization", "Only admins of Acme Inc can connect, rotate or disconnect Buildkite.")
	b.doesNotSay("Verify now", "Rotate token", "Disconnect Buildkite…")
	if n := b.count("main form"); n != 0 {
		t.Fatalf("member sees %d forms on the Buildkite page", n)
	}
	if n := b.count("input[name=token]"); n != 0 {
		t.Fatal("member sees a token field")
	}
	if n := b.count("nav.subnav a[href$='/settings/audit']"); n != 0 {
		t.Fatal("member sees the audit log link")
	}
	b.shot("buildkite-member-view")
	b.open("/orgs/acme/settings/members")
	b.says("Only admins can add, change or remove members.", "Max Member")
	if n := b.count("main form"); n != 0 {
		t.Fatalf("member sees %d forms on the members page", n)
	}
	for _, path := range []string{"/buildkite/verify", "/buildkite/disconnect", "/buildkite/rotate"} {
		b.open(bkPage)
		// Post as the member would with a hand-made form, with a valid CSRF token.
		st, err := chromedp.RunResponse(b.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const f = document.createElement("form"); f.method = "post"; f.action = %q;
			const c = document.createElement("input"); c.type = "hidden"; c.name = "csrf";
			c.value = document.querySelector("input[name=csrf]").value; f.appendChild(c);
			const r = document.createElement("input"); r.name = "revoke"; r.value = "1"; f.appendChild(r);
			document.body.appendChild(f); f.submit(); })()`, bkPage+strings.TrimPrefix(path, "/buildkite"))))
		if err != nil {
			t.Fatal(err)
		}
		b.checkPage()
		if st.Status != 403 {
			t.Fatalf("member POST %s: status %d, want 403", path, st.Status)
		}
		b.says("You cannot do this", "Only admins of this organization can do this.")
	}
	if st := b.open(bkPage + "/disconnect"); st != 403 {
		t.Fatalf("member GET disconnect page: %d", st)
	}
	b.open(bkPage)
	b.says("Connected")
	if d := deletes(srv.Sim); len(d) != 2 {
		t.Fatalf("a member's POST reached Buildkite: %v", d)
	}
	for _, s := range b.forbidden {
		if strings.Contains(srv.Logs.String(), s) {
			t.Fatalf("a token (%.8s…) is in the server log", s)
		}
	}
	t.Logf("%d pages checked for secrets", b.pages)
}
