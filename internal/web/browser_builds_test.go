package web_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kitewatch/kitewatch/internal/bk/bksim"
	"github.com/kitewatch/kitewatch/internal/bk/bksim/loggen"
	"github.com/kitewatch/kitewatch/internal/testenv"
)

// waitFor reopens path until its visible text contains phrase, for work
// kitewatch does in the background (webhook intake, analysis). It gives
// up after a generous bound; it asserts nothing about speed.
func (b *browser) waitFor(path, phrase string) {
	b.t.Helper()
	b.waitUntil(path, phrase, func() bool { return strings.Contains(b.text("body"), phrase) })
}

// waitUntil reopens path until ok reports true; what describes the wait.
func (b *browser) waitUntil(path, what string, ok func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		b.open(path)
		if ok() {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("page %s never showed %q; it says:\n%s", path, what, b.text("body"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// shotOf saves a screenshot of one element when -screenshots is set.
func (b *browser) shotOf(name, sel string) {
	b.t.Helper()
	if !*screenshots {
		return
	}
	shot, err := chromedp.Run(b.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	small, err := compactPNG(shot)
	if err != nil {
		b.t.Fatalf("compress screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), small, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowserBuilds walks build detection and failure analysis in Chromium
// as a new admin would: the empty Builds page, connecting Buildkite, the
// diagnostics, creating the webhook endpoint (its secret shown once), a
// failing matrix build delivered by webhook, the build on the Builds page
// and its analysis on the build page, the Overview, and a member who sees
// the same analysis but no admin forms. Every page's HTML is searched for
// the Buildkite tokens and, after the page that shows it once, the webhook
// secret.
func TestBrowserBuilds(t *testing.T) {
	chromium := testenv.Chromium(t)
	srv := startUIServer(t)
	b := newBrowser(t, srv.URL, chromium)
	for _, tok := range bksim.Demo().Tokens() {
		b.forbidden = append(b.forbidden, tok.Value)
	}

	// First-run setup.
	b.open(srv.SetupPath)
	b.typeInto("#org_name", "Acme Inc")
	b.typeInto("#org_slug", "acme")
	b.typeInto("#name", "Ada Admin")
	b.typeInto("#email", adminEmail)
	b.typeInto("#password", adminPassword)
	b.typeInto("#password_confirm", adminPassword)
	b.click("form button[type=submit]")
	b.says("Welcome to kitewatch", "Latest failed builds", "No builds yet: kitewatch shows failed builds once Buildkite is connected.")

	// Builds, before Buildkite is connected: the empty state says why.
	b.click("nav.topnav a[href='/orgs/acme/builds']")
	b.says("Builds", "No builds yet: Buildkite is not connected", "Connect Buildkite")
	if cur := eval[string](b, `document.querySelector("nav.topnav a[aria-current=page]").textContent`); cur != "Builds" {
		t.Fatalf("current nav entry %q, want Builds", cur)
	}
	for _, id := range []string{"f-pipeline", "f-branch", "f-state", "f-pr", "f-commit"} {
		if b.count(fmt.Sprintf("label[for=%q]", id)) != 1 {
			t.Fatalf("filter %s has no label", id)
		}
	}

	// Connect: the page gains the webhook and diagnostics panels.
	b.open(bkPage)
	b.typeInto("#bk-token", bksim.DemoTokenValue("good"))
	b.click("#connect button[type=submit]")
	b.says("Buildkite is connected", "Webhook", "Not configured", "kitewatch finds builds by polling Buildkite",
		"Diagnostics", "Token can list builds", "The token has read_builds and read_pipelines.",
		"Webhooks not configured: polling only", "Create webhook endpoint", "Poll now", "Backfill the last 7 days")
	if n := b.count("#diagnostics li.check"); n < 9 {
		t.Fatalf("%d diagnostics shown, want every check", n)
	}
	// Each check says its outcome in words, next to an icon.
	badges := eval[[]string](b, `[...document.querySelectorAll("#diagnostics li.check .badge")].map(e => e.innerText.replace(/\s+/g, " ").trim())`)
	for _, txt := range badges {
		if !regexp.MustCompile(`^\S (Pass|Warning|Fail|Not checked)$`).MatchString(txt) {
			t.Fatalf("check badge %q is not an icon and a word", txt)
		}
	}
	if b.count("#webhook input[name=mode][value=signature]:checked") != 1 {
		t.Fatal("signature mode is not the default")
	}
	b.says("Token (weaker)", "there is no replay protection")

	// Connecting starts a poll at once: the organization's existing builds
	// appear without waiting for the poll interval.
	b.waitUntil("/orgs/acme/builds", "the builds the first poll found", func() bool { return b.count("table.builds tbody tr") > 0 })
	b.doesNotSay("No builds yet")

	// Create the webhook endpoint: URL and secret shown once, with the
	// setup steps.
	b.open(bkPage)
	if st := b.click("#webhook button[type=submit]"); st != 201 {
		t.Fatalf("create webhook endpoint: status %d", st)
	}
	b.says("Webhook endpoint created", "Copy the secret now: this is the only time kitewatch shows it",
		"Organization Settings → Notification Services", "Send as X-Buildkite-Signature", "5 minutes",
		"build.finished", "job.finished", "build.* and job.*")
	hookURL := eval[string](b, `document.querySelector("#webhook-url").value`)
	secret := eval[string](b, `document.querySelector("#webhook-secret").value`)
	if !strings.Contains(hookURL, "/webhooks/buildkite/") || len(secret) < 20 {
		t.Fatalf("webhook setup shows URL %q and a %d-character secret", hookURL, len(secret))
	}
	b.shot("webhook-created")
	b.open(bkPage)
	if strings.Contains(b.html(), secret) {
		t.Fatal("the webhook secret is shown again on the Buildkite page")
	}
	b.forbidden = append(b.forbidden, secret)
	b.says("Configured", "signature", "none received yet", "Replace webhook endpoint")

	// The simulator delivers to it; a matrix build fails in three jobs.
	_, path, _ := strings.Cut(hookURL, "/webhooks/")
	if _, err := srv.Sim.AddWebhook(bksim.WebhookConfig{URL: srv.URL + "/webhooks/" + path, Token: secret, Mode: "signature"}); err != nil {
		t.Fatal(err)
	}
	logSpec := &loggen.Spec{Ecosystem: "go", Failure: "test", Seed: 1}
	var jobs []bksim.StartJob
	for _, v := range []string{"1.24", "1.25", "1.26"} {
		jobs = append(jobs, bksim.StartJob{Key: "go-" + v, Name: "go test " + v, Command: "go test ./...", Outcome: "failed", Log: logSpec})
	}
	ref, err := srv.Sim.StartBuild(bksim.StartSpec{Pipeline: "acme/api", Branch: "feature/matrix", Message: "Checkout: handle expired cards",
		Outcome: "failed", Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Sim.FinishBuild(ref.ID, ""); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("API #%d", ref.Number)

	// The build appears on the Builds page, failed, with its branch.
	rowJS := fmt.Sprintf(`[...document.querySelectorAll("table.builds tbody tr")].filter(tr => tr.querySelector("a").textContent.trim() == %q).map(tr => tr.innerText.replace(/\s+/g, " ")).join("")`, name)
	b.waitUntil("/orgs/acme/builds", name+" failed", func() bool { return strings.Contains(eval[string](b, rowJS), "✗ Failed") })
	row := eval[string](b, rowJS)
	for _, want := range []string{"✗ Failed", "feature/matrix", "Checkout: handle expired cards"} {
		if !strings.Contains(row, want) {
			t.Fatalf("builds row %q lacks %q", row, want)
		}
	}
	// Filters are a plain GET form.
	b.open("/orgs/acme/builds?pipeline=api&state=failed&branch=feature%2Fmatrix")
	b.says(name, "Clear filters")
	if v := eval[string](b, `document.querySelector("#f-branch").value`); v != "feature/matrix" {
		t.Fatalf("branch filter not kept: %q", v)
	}
	b.open("/orgs/acme/builds?branch=no-such-branch")
	b.says("No builds match these filters", "Clear the filters")

	// Its page: the header, the jobs, and the analysis with the excerpt and
	// the job count of the deduplicated matrix finding.
	b.open("/orgs/acme/builds")
	buildPath := eval[string](b, fmt.Sprintf(`[...document.querySelectorAll("table.builds a.num")].find(a => a.textContent.trim() == %q).getAttribute("href")`, name))
	b.waitFor(buildPath, "Analysed")
	b.says(name, "Failed", "Checkout: handle expired cards", "feature/matrix", "Open in Buildkite",
		"Failure analysis", "1 finding from 3 failed jobs", "in 3 jobs", "TestCheckout/expired_card", "Jobs", "go test 1.24", "go test 1.26")
	if b.count(".finding .term-container pre.term") != 1 || b.count(".finding .term-container .term-fg31") == 0 {
		t.Fatal("the excerpt is not rendered by terminal-to-html")
	}
	links := eval[[]string](b, `[...document.querySelectorAll(".finding dd.jobs a")].map(a => a.href)`)
	if len(links) != 3 {
		t.Fatalf("%d job log links on the finding, want 3", len(links))
	}
	for _, l := range links {
		if !regexp.MustCompile(`^https://buildkite\.com/acme/api/builds/\d+#[0-9a-f-]+$`).MatchString(l) {
			t.Fatalf("job log link %q is not a deep link to the job on Buildkite", l)
		}
	}
	if n := b.count("table.jobs tbody tr"); n < 3 {
		t.Fatalf("jobs table has %d rows", n)
	}
	analysisText := b.text("#analysis")
	b.shot("build-analysis")
	// On a phone the page fits the screen: the excerpt scrolls in its own
	// box and the jobs table becomes one block per job.
	b.viewport(phoneWidth, 844, true)
	b.fitsPhone(buildPath)
	b.shot("build-analysis-phone")
	b.viewport(1280, 900, false)

	// The Overview lists it with its top finding.
	b.click("nav.topnav a[href='/orgs/acme']")
	b.says("Latest failed builds", name, "TestCheckout/expired_card", "✓ Connected", "✓ Webhook", "last delivery")
	if !regexp.MustCompile(`\b\d+ pipelines?\b`).MatchString(b.text(".integration")) {
		t.Fatalf("overview gives no pipeline count: %s", b.text(".integration"))
	}

	// The webhook panel and the diagnostics show the delivery.
	b.open(bkPage)
	b.says("Configured", "Webhook deliveries — Webhook deliveries arrive")
	b.doesNotSay("none received yet")
	b.shotOf("buildkite-diagnostics", "#diagnostics")
	b.shotOf("buildkite-webhook", "#webhook")

	// A member sees the same analysis, and no admin form.
	link := b.inviteLink(memberEmail, "member")
	b.signOut()
	b.joinByInvitation(link, "Max Member", memberPassword)
	b.signOut()
	b.signIn(memberEmail, memberPassword)
	b.open(buildPath)
	if got := b.text("#analysis"); got != analysisText {
		t.Fatalf("member sees a different analysis:\n%s\nadmin saw:\n%s", got, analysisText)
	}
	b.open(bkPage)
	b.says("Diagnostics", "Webhook", "Configured")
	b.doesNotSay("Poll now", "Create webhook endpoint", "Replace webhook endpoint")
	if n := b.count("main form"); n != 0 {
		t.Fatalf("member sees %d forms on the Buildkite page", n)
	}

	// The member's hand-made POSTs to the admin forms are refused.
	for _, path := range []string{"/webhook", "/poll", "/backfill"} {
		b.open(bkPage)
		st, err := chromedp.RunResponse(b.ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
			const f = document.createElement("form"); f.method = "post"; f.action = %q;
			const c = document.createElement("input"); c.type = "hidden"; c.name = "csrf";
			c.value = document.querySelector("input[name=csrf]").value; f.appendChild(c);
			document.body.appendChild(f); f.submit(); })()`, bkPage+path)))
		if err != nil {
			t.Fatal(err)
		}
		b.checkPage()
		if st.Status != 403 {
			t.Fatalf("member POST %s: status %d, want 403", path, st.Status)
		}
	}

	// Poll now, as the admin: the demo organization's recent builds join
	// the list.
	b.signOut()
	b.signIn(adminEmail, adminPassword)
	b.open(bkPage)
	b.click("form[action$='/buildkite/poll'] button")
	b.says("Polled Buildkite just now:")
	b.open("/orgs/acme/builds")
	b.says(name)
	b.shot("builds")
	b.viewport(phoneWidth, 844, true)
	b.fitsPhone("/orgs/acme", "/orgs/acme/builds")
	if n := eval[int](b, `[...document.querySelectorAll("table.builds tbody td[data-label=State]")].filter(td => !["none", "normal", ""].includes(getComputedStyle(td, "::before").content)).length`); n == 0 {
		t.Fatalf("builds table cells have no column names on a phone: %s", eval[string](b, `JSON.stringify([...document.querySelectorAll("table.builds tbody td")].slice(0, 3).map(td => [td.dataset.label, getComputedStyle(td).display, getComputedStyle(td, "::before").content, innerWidth]))`))
	}
	b.viewport(1280, 900, false)

	for _, s := range b.forbidden {
		if strings.Contains(srv.Logs.String(), s) {
			t.Fatalf("a secret (%.8s…) is in the server log", s)
		}
	}
	t.Logf("%d pages checked for secrets", b.pages)
}
