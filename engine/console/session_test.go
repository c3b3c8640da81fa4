package console_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/engine/console"
)

// client is a browser-like client: a cookie jar, no redirects followed.
func client(t *testing.T, base *httptest.Server) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := base.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func post(t *testing.T, c *http.Client, u string, form url.Values, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// csrfOf reads the sign-out form's CSRF token from a page.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name=csrf value="`)
	if !ok {
		t.Fatal("no sign-out form on the page")
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// TestSessionCSRF: a cross-site sign-in is refused; sign-out needs the
// session's CSRF token and this site's origin; a revoked token's session
// ends at its next page.
func TestSessionCSRF(t *testing.T) {
	f := newFixture(t, true)
	base := f.srv.URL
	c := client(t, f.srv)
	form := url.Values{"token": {f.tokens[tRevocable]}}
	if resp := post(t, c, base+"/console/login", form, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-site sign-in: %s, cookies %v", resp.Status, resp.Cookies())
	}
	if resp := post(t, c, base+"/console/login", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in by Sec-Fetch-Site: %s", resp.Status)
	}
	resp := post(t, c, base+"/console/login", form, map[string]string{"Origin": base})
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("sign-in: %s, cookies %v", resp.Status, resp.Cookies())
	}
	ck := resp.Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/console" || ck.MaxAge <= 0 || ck.MaxAge > 3600 {
		t.Fatalf("session cookie %+v", ck)
	}
	r, page := get(t, c, base+"/console/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("studies page: %s", r.Status)
	}
	csrf := csrfOf(t, page)
	for _, bad := range []url.Values{{}, {"csrf": {"forged"}}} {
		if resp := post(t, c, base+"/console/logout", bad, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("sign-out with csrf %v: %s", bad, resp.Status)
		}
	}
	if resp := post(t, c, base+"/console/logout", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-out: %s", resp.Status)
	}
	if r, _ := get(t, c, base+"/console/"); r.StatusCode != http.StatusOK {
		t.Fatalf("the session ended after refused sign-outs: %s", r.Status)
	}
	// Revoking the token ends the session without a restart.
	if _, err := auth.Revoke(f.tokensFile, tRevocable, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := get(t, c, base+"/console/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/console/login" {
		t.Fatalf("after revocation the studies page answers %s to %q", r.Status, r.Header.Get("Location"))
	}

	// Sign-out with the right token ends the session.
	c = client(t, f.srv)
	post(t, c, base+"/console/login", url.Values{"token": {f.tokens[tAnalyst]}}, nil)
	_, page = get(t, c, base+"/console/")
	if resp := post(t, c, base+"/console/logout", url.Values{"csrf": {csrfOf(t, page)}}, map[string]string{"Origin": base}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %s", resp.Status)
	}
	if r, _ := get(t, c, base+"/console/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out the studies page answers %s", r.Status)
	}
}

// TestSignInLimit: the eleventh sign-in attempt within a minute from one
// address is refused with 429 and Retry-After, even with a good token.
func TestSignInLimit(t *testing.T) {
	f := newFixture(t, true)
	c := client(t, f.srv)
	for i := range 10 {
		if resp := post(t, c, f.srv.URL+"/console/login", url.Values{"token": {"jitai_wrong"}}, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %s", i+1, resp.Status)
		}
	}
	resp := post(t, c, f.srv.URL+"/console/login", url.Values{"token": {f.tokens[tAnalyst]}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 {
		t.Fatalf("eleventh attempt: %s, Retry-After %q, cookies %v", resp.Status, resp.Header.Get("Retry-After"), resp.Cookies())
	}
}

// TestSessionSecureUnderTLS: over TLS the session cookie is Secure, and
// every page carries headers that keep scripts and framing out.
func TestSessionSecureUnderTLS(t *testing.T) {
	f := newFixture(t, true)
	v, err := auth.NewVerifier(f.tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(f.eng, console.Options{Tokens: v, Permits: api.Permits, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(con.Wrap(http.NotFoundHandler()))
	defer ts.Close()
	c := client(t, ts)
	c.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	resp := post(t, c, ts.URL+"/console/login", url.Values{"token": {f.tokens[tAnalyst]}}, nil)
	if len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure || !resp.Cookies()[0].HttpOnly {
		t.Fatalf("cookies over TLS: %v", resp.Cookies())
	}
	r, _ := get(t, c, ts.URL+"/console/studies/"+srm)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("health page over TLS: %s", r.Status)
	}
	csp := r.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", r.Header)
	}
	if _, err := console.New(f.eng, console.Options{Tokens: v}); err == nil {
		t.Fatal("a console with tokens but no Permits was built")
	}
}
