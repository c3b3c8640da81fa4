package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/auth"
)

// Sign-in. A designer, analyst or admin token is posted once to
// /console/login and exchanged for a session: a random id in a cookie that
// is HttpOnly (no script reads it), SameSite=Strict (no other site's page
// sends it), Secure under TLS, scoped to /console and short-lived. The
// session keeps the token in memory only, and every page authenticates it
// again, so a revoked token ends its sessions at once. POSTs are also
// checked against cross-site requests: their Origin (or Sec-Fetch-Site)
// must be this site, and logout carries the session's CSRF token.

// CookieName is the session cookie's name.
const CookieName = "jitai_console"

// maxSessions bounds the sessions kept; the oldest go first.
const maxSessions = 10000

// consoleRoles may sign in.
var consoleRoles = []auth.Role{auth.RoleDesigner, auth.RoleAnalyst, auth.RoleAdmin}

type session struct {
	plain   string // the token, to authenticate it again on every page
	csrf    string
	expires time.Time
}

type sessions struct {
	now func() time.Time
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time, ttl time.Duration) *sessions {
	return &sessions{now: now, ttl: ttl, m: map[string]*session{}}
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// start opens a session for a token and returns its id.
func (s *sessions) start(plain string) (string, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, x := range s.m {
		if !now.Before(x.expires) {
			delete(s.m, id)
		}
	}
	for len(s.m) >= maxSessions {
		var oldest string
		for id, x := range s.m {
			if oldest == "" || x.expires.Before(s.m[oldest].expires) {
				oldest = id
			}
		}
		delete(s.m, oldest)
	}
	id, x := randomID(), &session{plain: plain, csrf: randomID(), expires: now.Add(s.ttl)}
	s.m[id] = x
	return id, x
}

func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[id]
	if !ok {
		return nil, false
	}
	if !s.now().Before(x.expires) {
		delete(s.m, id)
		return nil, false
	}
	return x, true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// session returns the request's signed-in viewer: a live session whose
// token still authenticates and may use the console.
func (c *Console) session(r *http.Request) (viewer, bool) {
	if c.opts.Tokens == nil {
		return viewer{}, false
	}
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return viewer{}, false
	}
	x, ok := c.sessions.get(ck.Value)
	if !ok {
		return viewer{}, false
	}
	tok, err := c.authenticate(x.plain)
	if err != nil {
		c.sessions.end(ck.Value)
		return viewer{}, false
	}
	return viewer{tok: tok, csrf: x.csrf}, true
}

var errRole = errors.New("only designer, analyst and admin tokens may sign in to the console")

func (c *Console) authenticate(plain string) (*auth.Token, error) {
	tok, err, reloadErr := c.opts.Tokens.Authenticate(plain)
	if reloadErr != nil {
		c.opts.Logger.Error("token file changed but could not be read; the previous tokens stay in force", zap.Error(reloadErr))
	}
	if err != nil {
		return nil, err
	}
	if !slices.Contains(consoleRoles, tok.Role) {
		return nil, errRole
	}
	return tok, nil
}

// sameSite says whether a POST comes from this site's own pages: its
// Origin names this host, or (without a usable Origin) the browser says
// Sec-Fetch-Site same-origin or none. A request with neither (not a
// browser) passes: it cannot carry the victim's cookie anyway.
func sameSite(r *http.Request) bool {
	// Origin "null" is what a browser sends under some referrer policies:
	// Sec-Fetch-Site decides then.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

type loginData struct {
	Frame
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.opts.Tokens == nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	if _, ok := c.session(r); ok {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", loginData{Frame: c.frame("Sign in", viewer{})})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.opts.Tokens == nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	if !sameSite(r) {
		c.errorPage(w, r, http.StatusForbidden, "Cross-site request refused", "Sign in from the console's own page.")
		return
	}
	if !c.allowSignIn(w, r) {
		return
	}
	plain := r.PostFormValue("token")
	tok, err := c.authenticate(plain)
	if err != nil {
		msg := "That token is not valid."
		switch {
		case plain == "":
			msg = "Paste a designer, analyst or admin token."
		case errors.Is(err, auth.ErrRevoked):
			msg = "That token has been revoked."
		case errors.Is(err, errRole):
			msg = "Only designer, analyst and admin tokens may sign in to the console."
		}
		c.render(w, http.StatusUnauthorized, "login", loginData{Frame: c.frame("Sign in", viewer{}), Error: msg})
		return
	}
	id, x := c.sessions.start(plain)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: Prefix, Expires: x.expires, MaxAge: int(c.opts.SessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	c.opts.Logger.Info("console sign-in", zap.String("token_id", tok.ID), zap.String("role", string(tok.Role)))
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
		return
	}
	x, ok := c.sessions.get(ck.Value)
	if !sameSite(r) || (ok && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(x.csrf)) != 1) {
		c.errorPage(w, r, http.StatusForbidden, "Cross-site request refused", "Sign out with the console's own button.")
		return
	}
	c.sessions.end(ck.Value)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// allowSignIn counts a sign-in attempt against the client address's
// budget; over it, the form answers 429 with Retry-After.
func (c *Console) allowSignIn(w http.ResponseWriter, r *http.Request) bool {
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	res, err := c.signIns.AllowN(r.Context(), "console-sign-in:"+client, c.opts.SignIns, 1)
	if err != nil || res.Allowed > 0 {
		return err == nil
	}
	retry := max(1, int(math.Ceil(res.RetryAfter.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	c.render(w, http.StatusTooManyRequests, "login", loginData{Frame: c.frame("Sign in", viewer{}),
		Error: fmt.Sprintf("Too many sign-in attempts from this address; try again in %d s.", retry)})
	return false
}
