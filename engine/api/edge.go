package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"
)

// MaxHeaderBytes bounds a request's header block (request line and
// headers). Over it, net/http answers 431 itself (see ProblemListener).
const MaxHeaderBytes = 64 << 10

// DefaultReadHeaderTimeout is how long a client may take to send a
// request's headers when Options.ReadHeaderTimeout is zero.
const DefaultReadHeaderTimeout = 5 * time.Second

// HTTPServer returns the http.Server that serves s with the edge limits of
// the API: the headers must arrive within the read-header timeout and fit
// in MaxHeaderBytes; the body must arrive within the request timeout (the
// handler sets the connection's read deadline, see ServeHTTP), so a slow
// body gets 408 instead of holding the connection; responses must be
// written within the request timeout plus a margin. Serve it on a
// ProblemListener so that the errors net/http answers itself are
// problem+json too.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.headerTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		WriteTimeout:      s.requestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(s.log),
	}
}

// edge refuses, before routing and before any of the body is read, what
// no route accepts: a declared body over MaxBodyBytes (413: with Expect:
// 100-continue the client is told before it sends the body, since
// net/http sends 100 Continue only on the first read of the body), a
// query with a bad %-escape (net/http leaves that to the handler, and
// URL.Query drops such pairs silently), and a path that is not canonical
// (the mux would answer a text/html redirect). It also sets the body's
// read deadline to the request's deadline. It reports whether to go on.
func (s *Server) edge(w http.ResponseWriter, r *http.Request, rc *http.ResponseController) bool {
	if dl, ok := r.Context().Deadline(); ok {
		// Not all writers support deadlines (httptest recorders): then
		// only the context bounds the request.
		_ = rc.SetReadDeadline(dl)
	}
	if r.ContentLength > MaxBodyBytes {
		w.Header().Set("Connection", "close")
		writeProblem(w, r, problem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
			fmt.Sprintf("Content-Length %d is over the limit of %d bytes; nothing was read", r.ContentLength, MaxBodyBytes), "Content-Length"))
		return false
	}
	if key, err := checkQuery(r.URL.RawQuery); err != nil {
		writeProblem(w, r, problem(http.StatusBadRequest, "malformed-query", "Malformed query string",
			fmt.Sprintf("the query string is not valid URL encoding: %v", err), key))
		return false
	}
	if p := r.URL.Path; r.Method != http.MethodConnect && !canonical(p) {
		writeProblem(w, r, problem(http.StatusBadRequest, "non-canonical-path", "Path not canonical",
			"the path has empty, . or .. segments; send the canonical path", "path"))
		return false
	}
	return true
}

// checkQuery returns the first query parameter whose name or value is not
// valid URL encoding (named as sent), with the error.
func checkQuery(q string) (string, error) {
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if strings.Contains(pair, ";") {
			return pair, errors.New("; is not a separator: use &")
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return k, err
		}
		if _, err := url.QueryUnescape(v); err != nil {
			return name, err
		}
	}
	return "", nil
}

// canonical says whether p is an absolute path without empty, . or ..
// segments (a trailing slash is allowed: no route has one, so it is 404).
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// methodNotAllowed answers 405 with Allow when the path is a route for
// other methods; it reports whether it answered.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) bool {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return false
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeProblem(w, r, problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		fmt.Sprintf("%s is not allowed on this route; use %s", r.Method, strings.Join(allow, " or ")), "method"))
	return true
}

// bodyTimeout says whether err is the body's read deadline passing.
func bodyTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
