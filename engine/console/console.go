// Package console is the trial console: web pages under /console that show
// designers, analysts and trial monitors a running study (its status,
// serving revision and reload history; its live randomisation integrity and
// decision counts). It is transport only, like engine/api: every number comes
// from a method of the engine service (Health, ReloadStatus, Studies), and
// what a token may see is decided by the API's own route table (Permits),
// so the console never shows what the API would refuse.
//
// The pages are rendered on the server through html/template with the
// simulation report's frame and SVG charts (engine/simulate/page): no
// script, no font or file to fetch, so the console works offline and its
// pages are plain HTML. Sign-in exchanges a designer, analyst or admin token
// for a short session cookie (see session.go).
package console

import (
	"bytes"
	"embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/auth"
	"github.com/jitai/jitai/engine/ratelimit"
	"github.com/jitai/jitai/engine/simulate/page"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var pages = page.Must(page.New(templateFS, "templates/*.tmpl"))

// Prefix is where the console is served.
const Prefix = "/console"

// Routes of the API whose permission a console page needs.
const (
	routeStudies = "GET /v1/studies"
	routeStudy   = "GET /v1/studies/{study}"
	routeHealth  = "GET /v1/studies/{study}/health"
)

// Options configure a Console.
type Options struct {
	// Tokens authenticates sign-in tokens; nil means authentication is off
	// (auth: none, which serve permits on loopback only): every page opens
	// without sign-in.
	Tokens *auth.Verifier
	// Permits says whether a token may use an API route for a study
	// (api.Permits); required when Tokens is set.
	Permits func(route string, tok *auth.Token, study string) bool
	// SessionTTL is how long a session lasts after sign-in (default 30
	// minutes).
	SessionTTL time.Duration
	// Refresh is how often the health page reloads itself (default 30 s;
	// negative: never).
	Refresh time.Duration
	// SignIns limits sign-in attempts per client address (default 10 a
	// minute, in bursts of 10): tokens are 256-bit secrets, but a form that
	// checks them should not be a free oracle.
	SignIns ratelimit.Limit
	Logger  *zap.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Console serves the console's pages.
type Console struct {
	eng      *engine.Engine
	opts     Options
	sessions *sessions
	signIns  ratelimit.Limiter
	mux      *http.ServeMux
}

// New builds the console of an engine.
func New(eng *engine.Engine, o Options) (*Console, error) {
	if o.Tokens != nil && o.Permits == nil {
		return nil, errors.New("console: with tokens, Options.Permits (api.Permits) is required")
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 30 * time.Minute
	}
	if o.Refresh == 0 {
		o.Refresh = 30 * time.Second
	}
	if o.SignIns.IsZero() {
		o.SignIns = ratelimit.Limit{Rate: 10, Burst: 10, Period: time.Minute}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{eng: eng, opts: o, sessions: newSessions(o.Now, o.SessionTTL),
		signIns: ratelimit.NewMemory(o.Now), mux: http.NewServeMux()}
	c.mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET "+Prefix+"/{$}", c.signedIn(c.studiesPage))
	c.mux.HandleFunc("GET "+Prefix+"/studies/{study}", c.signedIn(c.healthPage))
	c.mux.HandleFunc("GET "+Prefix+"/login", c.loginPage)
	c.mux.HandleFunc("POST "+Prefix+"/login", c.login)
	c.mux.HandleFunc("POST "+Prefix+"/logout", c.logout)
	c.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "No such page", r.URL.Path+" is not a page of the console.")
	})
	return c, nil
}

// Wrap serves the console under /console and everything else with next
// (the API).
func (c *Console) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Prefix || strings.HasPrefix(r.URL.Path, Prefix+"/") {
			c.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves a console page with headers that keep it to itself: no
// script may run, nothing is fetched, no other site may frame it, and
// nothing is cached.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c.mux.ServeHTTP(w, r)
}

// viewer is who is looking: a token (nil when authentication is off) and
// the session's CSRF token for the logout form.
type viewer struct {
	tok  *auth.Token
	csrf string
}

// may says whether the viewer may use an API route for a study.
func (c *Console) may(v viewer, route, study string) bool {
	if c.opts.Tokens == nil {
		return true
	}
	return c.opts.Permits(route, v.tok, study)
}

// signedIn runs a page for a signed-in viewer; without a session it sends
// the browser to the sign-in form.
func (c *Console) signedIn(page func(http.ResponseWriter, *http.Request, viewer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.opts.Tokens == nil {
			page(w, r, viewer{})
			return
		}
		v, ok := c.session(r)
		if !ok {
			http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
			return
		}
		page(w, r, v)
	}
}

// Frame is what every console page's frame shows (its title, who is
// signed in, the sign-out form's CSRF token).
type Frame struct {
	Title   string
	Who     string // the signed-in token's name and role; empty without auth
	CSRF    string
	AuthOff bool
	Refresh int // seconds; 0: no reload
}

func (c *Console) frame(title string, v viewer) Frame {
	f := Frame{Title: title, CSRF: v.csrf, AuthOff: c.opts.Tokens == nil}
	if v.tok != nil {
		f.Who = v.tok.Name + " (" + string(v.tok.Role) + ")"
	}
	return f
}

func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := pages.Render(&b, name, data); err != nil {
		c.opts.Logger.Error("rendering a console page", zap.String("page", name), zap.Error(err))
		http.Error(w, "the console could not render this page; the server's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = b.WriteTo(w)
}

type errorData struct {
	Frame
	Status  int
	Message string
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	v, _ := c.session(r)
	c.render(w, status, "error", errorData{Frame: c.frame(title, v), Status: status, Message: msg})
}
