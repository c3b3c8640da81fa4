package console_test

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/jitai/jitai/engine"
)

// screenshots, when set, is a folder (docs/) that TestConsoleInChromium
// writes a PNG of each page to: go test ./engine/console -run Chromium
// -screenshots ../../docs.
var screenshots = flag.String("screenshots", "", "write a PNG of each console page to this folder")

// shoot saves the page in the screenshots folder, when one is given.
func (b *browser) shoot(t *testing.T, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png := run(t, b, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// chromium finds the system Chromium. In CI (CI set) a missing browser
// fails the test; on a developer's machine it skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is required in CI (apt-get install chromium; .ci/run installs it)")
	}
	t.Skip("no Chromium on this machine (apt-get install chromium); CI never skips")
	return ""
}

// browser is one headless Chromium with a fresh profile; its tab reports
// console errors, uncaught exceptions and failed loads.
type browser struct {
	ctx context.Context

	mu sync.Mutex
	// errs are the problems the pages reported; expected lists the URLs
	// whose non-2xx status a test asked for (a refused page), whose
	// network error entry is not a fault.
	errs     []string
	expected map[string]bool
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	b := &browser{expected: map[string]bool{}}
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser and its tab
		t.Fatal(err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			b.mu.Lock()
			if !(m.Source == "network" && b.expected[m.URL]) {
				b.errs = append(b.errs, fmt.Sprintf("%s (%s, source %q)", m, m.URL, m.Source))
			}
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	b.ctx = ctx
	return b
}

func (b *browser) expect(url string) {
	b.mu.Lock()
	b.expected[url] = true
	b.mu.Unlock()
}

func (b *browser) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// noErrors fails on any problem a page reported.
func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Fatalf("the pages reported errors:\n%s", strings.Join(b.errs, "\n"))
	}
}

// cells reads the [data-k] cells of each row matching sel, keyed by the
// row's attr.
func (b *browser) cells(t *testing.T, sel, attr string) map[string]map[string]string {
	t.Helper()
	js := fmt.Sprintf(`(() => { const out = {};
		for (const tr of document.querySelectorAll(%q)) {
			const o = {}; for (const td of tr.querySelectorAll('[data-k]')) o[td.dataset.k] = td.textContent.trim();
			out[tr.getAttribute(%q)] = o; }
		return out; })()`, sel, attr)
	return run(t, b, chromedp.Evaluate[map[string]map[string]string](js))
}

// signIn opens the console and posts token in its sign-in form.
func (b *browser) signIn(t *testing.T, base, token string) {
	t.Helper()
	b.do(t, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin")))
}

// sameFactors checks the factor rows a page shows against the endpoint's.
func sameFactors(t *testing.T, where string, shown map[string]map[string]string, want []engine.FactorHealth) {
	t.Helper()
	if len(shown) != len(want) {
		t.Fatalf("%s: %d factor rows shown, the endpoint has %d", where, len(shown), len(want))
	}
	for _, f := range want {
		row := shown[f.Name]
		num := func(k string) float64 {
			v, err := strconv.ParseFloat(row[k], 64)
			if err != nil {
				t.Fatalf("%s factor %s: %s %q is not a number", where, f.Name, k, row[k])
			}
			return v
		}
		if row["randomised"] != strconv.FormatInt(f.Randomised, 10) || row["treated"] != strconv.FormatInt(f.Treated, 10) || row["flag"] != f.Flag ||
			math.Abs(num("expected")-f.Expected) > 0.005 || math.Abs(num("z")-f.Z) > 0.005 || math.Abs(num("p")-f.PValue) > 5e-3*f.PValue {
			t.Fatalf("%s factor %s shows %v; the endpoint says %+v", where, f.Name, row, f)
		}
	}
}

func counted(m map[string]int64) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = strconv.FormatInt(v, 10)
	}
	return out
}

func column(shown map[string]map[string]string, k string) map[string]string {
	out := map[string]string{}
	for row, cells := range shown {
		out[row] = cells[k]
	}
	return out
}

// TestConsoleInChromium signs in with tokens of each role in headless
// Chromium and checks what each page shows against the health endpoint,
// the sample-ratio flag of the 0.7-against-0.6 study, role and study
// limits, the session cookie, and sign-out; no page may report an error.
func TestConsoleInChromium(t *testing.T) {
	f := newFixture(t, true)
	base := f.srv.URL
	b := newBrowser(t)

	// Without a session the console asks for a token.
	b.do(t, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.ID("token")))
	if loc := run(t, b, chromedp.Location()); loc != base+"/console/login" {
		t.Fatalf("without a session /console/ shows %s, want the sign-in page", loc)
	}
	// An app token may not sign in (the form answers 401 and says why).
	b.expect(base + "/console/login")
	b.signIn(t, base, f.tokens[tApp])
	msg := run(t, b, chromedp.Text(chromedp.ID("login-error")))
	if !strings.Contains(msg, "Only designer, analyst and admin") {
		t.Fatalf("app token sign-in says %q", msg)
	}

	// An analyst of every study sees both, with the endpoint's numbers.
	b.signIn(t, base, f.tokens[tAnalyst])
	b.do(t, chromedp.WaitVisible(chromedp.ID("studies")))
	rows := b.cells(t, "#studies tr[data-study]", "data-study")
	for _, id := range []string{live, srm} {
		h := f.health(t, id)
		if rows[id]["today"] != strconv.FormatInt(h.Decisions.Today, 10) || rows[id]["total"] != strconv.FormatInt(h.Decisions.Total, 10) ||
			rows[id]["revision"] == "" || !strings.HasPrefix(rows[id]["status"], "serving") {
			t.Fatalf("studies page row %s: %v; endpoint decisions %+v", id, rows[id], h.Decisions)
		}
	}
	// The refused reload, as GET /v1/studies/{study} reports it.
	var sum struct {
		Revision string `json:"policy_revision"`
		Reload   struct {
			LastError struct {
				Errors []string `json:"errors"`
			} `json:"last_error"`
		} `json:"reload"`
	}
	f.get(t, "/v1/studies/"+srm, &sum)
	shownErrs := run(t, b, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll('ul[data-errors=%q] li')].map(li => li.textContent.trim())`, srm)))
	if len(sum.Reload.LastError.Errors) == 0 || fmt.Sprint(shownErrs) != fmt.Sprint(sum.Reload.LastError.Errors) ||
		rows[srm]["status"] != "serving; the last reload failed" || !strings.HasPrefix(sum.Revision, rows[srm]["revision"]) || rows[live]["status"] != "serving" {
		t.Fatalf("reload shown: status %q, revision %q, errors %q; the API: %+v", rows[srm]["status"], rows[srm]["revision"], shownErrs, sum)
	}
	b.shoot(t, "console-studies.png")
	if !strings.HasPrefix(rows[srm]["srm"], "red") || !strings.HasPrefix(rows[live]["srm"], "ok") {
		t.Fatalf("sample-ratio column: %s %q, %s %q", srm, rows[srm]["srm"], live, rows[live]["srm"])
	}
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict || cookies[0].Path != "/console" || cookies[0].Secure {
		t.Fatalf("session cookie %+v: want one HttpOnly, SameSite=Strict cookie for /console (not Secure over plain HTTP)", cookies)
	}

	// The 0.7-against-0.6 study is red, with the endpoint's numbers.
	h := f.health(t, srm)
	b.do(t, chromedp.Navigate(base+"/console/studies/"+srm), chromedp.WaitVisible(chromedp.ID("factors")))
	shown := b.cells(t, "#factors tr[data-factor]", "data-factor")
	sameFactors(t, srm, shown, h.Factors)
	b.shoot(t, "console-health-srm.png")
	if shown["prompt"]["flag"] != engine.FlagRed || h.Factors[0].Treated != 700 || h.Factors[0].Randomised != 1000 {
		t.Fatalf("prompt of %s: shown %v, endpoint %+v; want red at 700 of 1000", srm, shown["prompt"], h.Factors[0])
	}

	// The live study: every table against the endpoint.
	h = f.health(t, live)
	b.do(t, chromedp.Navigate(base+"/console/studies/"+live), chromedp.WaitVisible(chromedp.ID("factors")))
	sameFactors(t, live, b.cells(t, "#factors tr[data-factor]", "data-factor"), h.Factors)
	b.shoot(t, "console-health.png")
	for _, pt := range h.ByDecisionPoint {
		sameFactors(t, live+" point "+pt.DecisionPoint, b.cells(t, fmt.Sprintf("table[data-point=%q] tr[data-factor]", pt.DecisionPoint), "data-factor"), pt.Factors)
	}
	dec := b.cells(t, "#decisions tr[data-row]", "data-row")["counts"]
	if dec["today"] != strconv.FormatInt(h.Decisions.Today, 10) || dec["total"] != strconv.FormatInt(h.Decisions.Total, 10) || dec["fail_safe"] != strconv.FormatInt(h.Decisions.FailSafe, 10) {
		t.Fatalf("decisions shown %v; endpoint %+v", dec, h.Decisions)
	}
	if got, want := column(b.cells(t, "#actions tr[data-action]", "data-action"), "n"), counted(h.Decisions.ByAction); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("actions shown %v; endpoint %v", got, want)
	}
	if got, want := column(b.cells(t, "#reasons tr[data-reason]", "data-reason"), "n"), counted(h.Availability.ByReason); len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("unavailability reasons shown %v; endpoint %v", got, want)
	}

	// Sign out: back to the form, and the old session opens nothing.
	b.do(t, chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("token")))
	b.do(t, chromedp.Navigate(base+"/console/studies/"+live), chromedp.WaitVisible(chromedp.ID("token")))

	// A designer bound to stress-mrt sees that study only, as the API.
	b.signIn(t, base, f.tokens[tDesignerLive])
	b.do(t, chromedp.WaitVisible(chromedp.ID("studies")))
	if rows := b.cells(t, "#studies tr[data-study]", "data-study"); len(rows) != 1 || rows[live] == nil {
		t.Fatalf("a designer bound to %s sees %v", live, rows)
	}
	b.expect(base + "/console/studies/" + srm)
	b.do(t, chromedp.Navigate(base+"/console/studies/"+srm), chromedp.WaitVisible(chromedp.ID("problem")))
	if status := run(t, b, chromedp.AttributeValue(chromedp.ID("problem"), "data-status")).Value; status != "403" {
		t.Fatalf("a designer bound to %s opening %s: status %q, want 403", live, srm, status)
	}
	b.noErrors(t)
}

// TestConsoleAuthNone: with authentication off (auth: none, loopback) the
// console opens without sign-in and shows the endpoint's numbers.
func TestConsoleAuthNone(t *testing.T) {
	f := newFixture(t, false)
	b := newBrowser(t)
	b.do(t, chromedp.Navigate(f.srv.URL+"/console"), chromedp.WaitVisible(chromedp.ID("studies")))
	who := run(t, b, chromedp.Text(chromedp.ID("who")))
	if !strings.Contains(who, "Authentication is off") {
		t.Fatalf("the bar says %q", who)
	}
	h := f.health(t, srm)
	b.do(t, chromedp.Navigate(f.srv.URL+"/console/studies/"+srm), chromedp.WaitVisible(chromedp.ID("factors")))
	sameFactors(t, srm, b.cells(t, "#factors tr[data-factor]", "data-factor"), h.Factors)
	if nodes := run(t, b, chromedp.Nodes(chromedp.CSSAll("#logout"), chromedp.AtLeast(0))); len(nodes) != 0 {
		t.Fatal("a sign-out button without sign-in")
	}
	b.noErrors(t)
}
