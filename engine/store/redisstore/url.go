package redisstore

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client kinds.
const (
	kindSingle   = "single"
	kindCluster  = "cluster"
	kindSentinel = "sentinel"
)

// urlHelp lists the accepted URL forms for error messages.
const urlHelp = "use redis://[user:password@]host:port[/db], rediss://... (TLS), unix:///path/to/redis.sock, " +
	"redis+cluster://[user:password@]host1:port1,host2:port2 or redis+sentinel://[user:password@]host1:port1,host2:port2/master[/db]"

// newClient builds the client that rawURL names, with opts (already
// defaulted) taking precedence over the URL's query parameters. It does not
// connect.
func newClient(rawURL string, opts Options) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", fmt.Errorf("redis url has no scheme: %s", urlHelp)
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss", "unix":
		if host, _, _ := splitAuthority(rest); strings.Contains(host, ",") {
			return nil, "", fmt.Errorf("redis url lists several hosts: use redis+cluster:// for a cluster or redis+sentinel:// for Sentinel")
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("redis url: %s", redactErr(err, rawURL))
		}
		applyConn(connFields{
			poolSize: &o.PoolSize, minIdle: &o.MinIdleConns, maxRetries: &o.MaxRetries, dialerRetries: &o.DialerRetries,
			dial: &o.DialTimeout, read: &o.ReadTimeout, write: &o.WriteTimeout, pool: &o.PoolTimeout,
			ctxTimeout: &o.ContextTimeoutEnabled, name: &o.ClientName,
		}, opts)
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClient(o), kindSingle, nil
	case "redis+cluster", "rediss+cluster":
		base := strings.TrimSuffix(strings.ToLower(scheme), "+cluster")
		hosts, user, path, query, err := splitMulti(rest)
		if err != nil {
			return nil, "", err
		}
		if path != "" && path != "/" && path != "/0" {
			return nil, "", fmt.Errorf("redis cluster url path %q: Redis Cluster has only database 0; leave the path out", path)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, "", fmt.Errorf("redis url query: %w", err)
		}
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		u := &url.URL{Scheme: base, User: user, Host: hosts[0], RawQuery: q.Encode()}
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, "", fmt.Errorf("redis cluster url: %s", redactErr(err, u.String()))
		}
		applyConn(connFields{
			poolSize: &o.PoolSize, minIdle: &o.MinIdleConns, maxRetries: &o.MaxRetries, dialerRetries: &o.DialerRetries,
			dial: &o.DialTimeout, read: &o.ReadTimeout, write: &o.WriteTimeout, pool: &o.PoolTimeout,
			ctxTimeout: &o.ContextTimeoutEnabled, name: &o.ClientName,
		}, opts)
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		return redis.NewClusterClient(o), kindCluster, nil
	case "redis+sentinel", "rediss+sentinel":
		base := strings.TrimSuffix(strings.ToLower(scheme), "+sentinel")
		hosts, user, path, query, err := splitMulti(rest)
		if err != nil {
			return nil, "", err
		}
		parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
		if len(parts) == 0 || len(parts) > 2 {
			return nil, "", fmt.Errorf("redis sentinel url path %q: name the master, as in /mymaster or /mymaster/0", path)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, "", fmt.Errorf("redis url query: %w", err)
		}
		master, err := url.PathUnescape(parts[0])
		if err != nil {
			return nil, "", fmt.Errorf("redis sentinel url master name: %w", err)
		}
		q.Set("master_name", master)
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		u := &url.URL{Scheme: base, User: user, Host: hosts[0], RawQuery: q.Encode()}
		if len(parts) == 2 {
			u.Path = "/" + parts[1]
		}
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, "", fmt.Errorf("redis sentinel url: %s", redactErr(err, u.String()))
		}
		applyConn(connFields{
			poolSize: &o.PoolSize, minIdle: &o.MinIdleConns, maxRetries: &o.MaxRetries, dialerRetries: &o.DialerRetries,
			dial: &o.DialTimeout, read: &o.ReadTimeout, write: &o.WriteTimeout, pool: &o.PoolTimeout,
			ctxTimeout: &o.ContextTimeoutEnabled, name: &o.ClientName,
		}, opts)
		return redis.NewFailoverClient(o), kindSentinel, nil
	default:
		return nil, "", fmt.Errorf("redis url scheme %q: %s", scheme, urlHelp)
	}
}

// splitAuthority splits "[userinfo@]hosts[/path][?query]" at the first '/'
// or '?' after the authority.
func splitAuthority(rest string) (authority, path, query string) {
	rest, query, _ = strings.Cut(rest, "?")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, path = rest[:i], rest[i:]
	}
	return rest, path, query
}

// splitMulti parses the part after "scheme://" of a URL that lists several
// hosts, which net/url rejects. Hosts without a port get 6379.
func splitMulti(rest string) (hosts []string, user *url.Userinfo, path, query string, err error) {
	if strings.Contains(rest, "#") {
		return nil, nil, "", "", fmt.Errorf("redis url must not contain '#': %s", urlHelp)
	}
	authority, path, query := splitAuthority(rest)
	hostList := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		// Let net/url decode the user info (percent-escapes).
		u, perr := url.Parse("redis://" + authority[:i] + "@x")
		if perr != nil {
			return nil, nil, "", "", fmt.Errorf("redis url user info is malformed; percent-encode special characters in the password")
		}
		user, hostList = u.User, authority[i+1:]
	}
	for _, h := range strings.Split(hostList, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, nil, "", "", fmt.Errorf("redis url has an empty host in %q: %s", hostList, urlHelp)
		}
		host, port, serr := net.SplitHostPort(h)
		if serr != nil {
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "6379"
		}
		if host == "" || strings.ContainsAny(host, "/?@[]") {
			return nil, nil, "", "", fmt.Errorf("redis url host %q is malformed: %s", h, urlHelp)
		}
		hosts = append(hosts, net.JoinHostPort(host, port))
	}
	return hosts, user, path, query, nil
}

// redactErr returns err's message with the URL's password removed, in case
// the parser quoted it.
func redactErr(err error, rawURL string) string {
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// connFields points at one client options struct's connection fields.
type connFields struct {
	poolSize, minIdle, maxRetries, dialerRetries *int
	dial, read, write, pool                      *time.Duration
	ctxTimeout                                   *bool
	name                                         *string
}

// applyConn sets the connection fields: an option set in opts wins, then a
// value given in the URL, then the default.
func applyConn(f connFields, opts Options) {
	pickInt := func(dst *int, opt, def int) {
		switch {
		case opt != 0:
			*dst = opt
		case *dst == 0:
			*dst = def
		}
	}
	pickDur := func(dst *time.Duration, opt, def time.Duration) {
		switch {
		case opt != 0:
			*dst = opt
		case *dst == 0:
			*dst = def
		}
	}
	pickInt(f.poolSize, opts.PoolSize, defaultPoolSize())
	pickInt(f.minIdle, opts.MinIdleConns, 0)
	pickInt(f.maxRetries, opts.MaxRetries, defaultMaxRetries)
	// One dial attempt per try: the command retries (MaxRetries) already
	// back off and retry, and Redis being down must fail fast.
	pickInt(f.dialerRetries, 0, 1)
	pickDur(f.dial, opts.DialTimeout, defaultDialTimeout)
	pickDur(f.read, opts.ReadTimeout, defaultReadTimeout)
	pickDur(f.write, opts.WriteTimeout, defaultWriteTimeout)
	pickDur(f.pool, opts.PoolTimeout, defaultPoolTimeout)
	*f.ctxTimeout = true
	if *f.name == "" {
		*f.name = "jitai"
	}
}
