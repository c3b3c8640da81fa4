package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/policies"
)

// Config is the server configuration. Precedence: flags, then JITAI_*
// environment variables, then the YAML file, then defaults.
type Config struct {
	Addr           string        `yaml:"addr"`
	Studies        string        `yaml:"studies"`
	Data           string        `yaml:"data"`
	Durability     string        `yaml:"durability"`
	LogLevel       string        `yaml:"log_level"`
	ShutdownGrace  time.Duration `yaml:"shutdown_grace"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	PolicyTimeout  time.Duration `yaml:"policy_timeout"`
	Evaluator      string        `yaml:"evaluator"`
	// MaxClockSkew is how far an app's decision time may be from the
	// server clock (default 5m); negative (0 or "off") turns the check off.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	Store        string        `yaml:"store"`
	RedisURL     string        `yaml:"redis_url"`
	RateLimit    int           `yaml:"rate_limit"`
	RateBurst    int           `yaml:"rate_burst"`
	// WatchInterval is how often the studies folder is polled for changed
	// studies (hot reload); negative ("off") turns watching off.
	WatchInterval time.Duration `yaml:"watch_interval"`
	// Clock is on (default) or off: whether this engine runs the trial
	// clock (fires scheduled points, delivers). Every engine on a shared
	// store may run it: claims are atomic.
	Clock string `yaml:"clock"`
	// WALLimit and MinFree bound the embedded store's write-ahead log and
	// the free space under which it refuses writes (0: the store's
	// defaults, 64 MiB and twice the WAL limit; MinFree -1: no guard).
	WALLimit int64 `yaml:"wal_limit"`
	MinFree  int64 `yaml:"min_free"`
	// EraseRewriteAOF is auto (default) or off: whether an erasure on the
	// Redis store starts an AOF rewrite (docs/redis.md).
	EraseRewriteAOF string `yaml:"erase_rewrite_aof"`

	// AuthConfig holds auth, tokens_file, audit_log, metrics_auth and TLS.
	AuthConfig `yaml:",inline"` // see authconfig.go
}

// SetDefaults fills unset values.
func (c *Config) SetDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.Studies == "" {
		c.Studies = "policies/examples"
	}
	if c.Data == "" {
		c.Data = "data"
	}
	if c.Clock == "" {
		c.Clock = "on"
	}
	if c.Store == "" {
		c.Store = "embedded"
		if c.RedisURL != "" {
			c.Store = "redis" // a Redis URL alone says which store
		}
	}
	if c.Store == "redis" && c.RedisURL == "" {
		c.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if c.Durability == "" {
		c.Durability = "process"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 15 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.Evaluator == "" {
		c.Evaluator = policies.EvaluatorIR
	}
	if c.PolicyTimeout == 0 {
		c.PolicyTimeout = 2 * time.Second
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = time.Second
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = engine.DefaultMaxClockSkew
	}
	if c.RateLimit > 0 && c.RateBurst == 0 {
		c.RateBurst = 2 * c.RateLimit
	}
	c.AuthConfig.SetDefaults(c.Data)
}

// Validate says which key is wrong and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: want host:port, e.g. 127.0.0.1:8080", c.Addr))
	}
	if c.Store != "embedded" && c.Store != "redis" {
		errs = append(errs, fmt.Errorf("store %q: want embedded (SQLite under data) or redis (with redis_url)", c.Store))
	}
	if c.Store == "embedded" && c.RedisURL != "" {
		errs = append(errs, errors.New("redis_url is set but store is embedded: add --store redis"))
	}
	if c.Durability != "process" && c.Durability != "power" {
		errs = append(errs, fmt.Errorf("durability %q: want process (survives a crash of the engine) or power (survives power loss; slower)", c.Durability))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	for name, d := range map[string]time.Duration{"shutdown_grace": c.ShutdownGrace, "request_timeout": c.RequestTimeout, "policy_timeout": c.PolicyTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.Evaluator != policies.EvaluatorIR && c.Evaluator != policies.EvaluatorTopdown {
		errs = append(errs, fmt.Errorf("evaluator %q: want %s or %s", c.Evaluator, policies.EvaluatorIR, policies.EvaluatorTopdown))
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		errs = append(errs, errors.New("rate_limit and rate_burst must not be negative"))
	}
	errs = append(errs, c.AuthConfig.Validate())
	return errors.Join(errs...)
}

// configKeys maps each key to its flag usage; flags, env vars and YAML keys share names.
var configKeys = []struct{ key, usage string }{
	{"addr", "listen address host:port (default 127.0.0.1:8080)"},
	{"studies", "folder of study folders (default policies/examples)"},
	{"data", "folder of the embedded store (default data)"},
	{"store", "embedded (SQLite under --data) | redis (default embedded)"},
	{"redis-url", "Redis URL: redis://host:port/db, rediss://..., redis+cluster://h1:p1,h2:p2, redis+sentinel://s1:p1/master; pool and timeouts as query options (?pool_size=&dial_timeout=&read_timeout=&write_timeout=)"},
	{"durability", "process | power: what an answered decision survives (default process)"},
	{"log-level", "debug | info | warn | error (default info)"},
	{"shutdown-grace", "how long to drain in-flight requests on shutdown (default 15s)"},
	{"request-timeout", "time limit of one request (default 10s)"},
	{"policy-timeout", "time limit of one policy evaluation (default 2s)"},
	{"evaluator", "ir | topdown: how the policies of studies whose study.yaml has no evaluator key are evaluated; ir runs OPA's planned IR, topdown is OPA's tree-walking evaluator (default ir)"},
	{"max-clock-skew", "refuse decision times further than this from the server clock (422 naming time); 0 or off turns the check off, e.g. to replay past times (default 5m)"},
	{"clock", "on | off: run the trial clock on this engine: fire scheduled decision points, record missed ones, deliver (default on)"},
	{"wal-limit", "embedded store: bound of the write-ahead log, in bytes or with KiB, MiB, GiB; past it the log is checkpointed and truncated (default 64MiB)"},
	{"min-free", "embedded store: free disk space under which writes are refused (503 with Retry-After) and /readyz is 503, before the disk is full; off turns the guard off (default 2 x wal-limit)"},
	{"erase-rewrite-aof", "auto | off: Redis store: whether an erasure starts an AOF rewrite (BGREWRITEAOF) on every master with appendonly on, so that the erased data leave the disk (default auto)"},
	{"rate-limit", "requests per second allowed to each client; 0 = no limit (default 0)"},
	{"rate-burst", "burst of requests allowed above the rate (default 2 x rate-limit)"},
	{"watch-interval", "how often to poll the studies folder and hot-reload changed studies; off = only on SIGHUP or POST .../reload (default 1s)"},
	{"auth", "none | token: bearer tokens from the token file (default none; none is refused on a non-loopback address)"},
	{"tokens-file", "token file written by 'jitai token' (default DATA/tokens.json)"},
	{"audit-log", "append-only audit log, JSON lines (default DATA/audit.jsonl)"},
	{"metrics-auth", "none | token: whether /metrics and /openapi.json need an analyst or admin token (default token)"},
	{"tls-cert", "TLS certificate file (PEM); serve HTTPS"},
	{"tls-key", "TLS private key file (PEM)"},
	{"tls-client-ca", "CA bundle (PEM): require and verify client certificates (mTLS)"},
}

// configFlags are serve's flags: one per configuration key, and --config.
type configFlags struct {
	values map[string]*string
	file   string
}

// bindConfigFlags defines a flag for every configuration key on fs.
func bindConfigFlags(fs *pflag.FlagSet) *configFlags {
	cf := &configFlags{values: map[string]*string{}}
	for _, k := range configKeys {
		cf.values[k.key] = fs.String(k.key, "", k.usage)
	}
	fs.StringVar(&cf.file, "config", "", "YAML configuration file (keys as the flags, with _ for -; env JITAI_CONFIG)")
	return cf
}

// load reads the configuration: the flags set on fs, then the environment,
// then the optional YAML file, then defaults.
func (cf *configFlags) load(fs *pflag.FlagSet, env func(string) string) (*Config, error) {
	c, err := readConfigFile(cf.file, env)
	if err != nil {
		return nil, err
	}
	for _, k := range configKeys {
		v, from := *cf.values[k.key], "--"+k.key
		if !fs.Changed(k.key) {
			name := "JITAI_" + strings.ToUpper(strings.ReplaceAll(k.key, "-", "_"))
			if v = env(name); v == "" {
				continue
			}
			from = name
		}
		if err := c.set(k.key, v); err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// loadFile reads a YAML mapping of keys (the flag names with _ for -);
// every value goes through the same setter as flags and env vars, so an
// error names the key and the fix.
func (c *Config) loadFile(name string, raw []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the configuration must be a mapping of key: value", name, m.Line)
	}
	known := map[string]bool{}
	for _, k := range configKeys {
		known[k.key] = true
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := strings.ReplaceAll(k.Value, "_", "-")
		if !known[key] || strings.Contains(k.Value, "-") {
			return fmt.Errorf("%s:%d: unknown key %q (keys: addr, studies, data, store, redis_url, durability, log_level, shutdown_grace, request_timeout, policy_timeout, evaluator, max_clock_skew, clock, wal_limit, min_free, erase_rewrite_aof, rate_limit, rate_burst, watch_interval, auth, tokens_file, audit_log, metrics_auth, tls_cert, tls_key, tls_client_ca)", name, k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: %s must be a single value", name, v.Line, k.Value)
		}
		if err := c.set(key, v.Value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", name, v.Line, k.Value, err)
		}
	}
	return nil
}

func (c *Config) set(key, v string) error {
	dur := func(dst *time.Duration) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, err2 := strconv.Atoi(v); err2 == nil && n == 0 {
				*dst = 0
				return nil
			}
			return fmt.Errorf("%q is not a duration (e.g. 15s)", v)
		}
		*dst = d
		return nil
	}
	switch key {
	case "addr":
		c.Addr = v
	case "studies":
		c.Studies = v
	case "data":
		c.Data = v
	case "store":
		c.Store = v
	case "redis-url":
		c.RedisURL = v
	case "durability":
		c.Durability = v
	case "log-level":
		c.LogLevel = v
	case "shutdown-grace":
		return dur(&c.ShutdownGrace)
	case "request-timeout":
		return dur(&c.RequestTimeout)
	case "policy-timeout":
		return dur(&c.PolicyTimeout)
	case "evaluator":
		c.Evaluator = v
	case "wal-limit":
		n, err := parseBytes(v)
		if err != nil || n < 1<<20 {
			return fmt.Errorf("%q: want a size of at least 1MiB, e.g. 64MiB", v)
		}
		c.WALLimit = n
	case "min-free":
		if v == "off" {
			c.MinFree = -1
			return nil
		}
		n, err := parseBytes(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q: want a size, e.g. 256MiB, or off", v)
		}
		c.MinFree = n
	case "erase-rewrite-aof":
		return choose(&c.EraseRewriteAOF, v, "auto", "off")
	case "clock":
		return choose(&c.Clock, v, "on", "off")
	case "max-clock-skew":
		if v == "off" {
			c.MaxClockSkew = -1
			return nil
		}
		if err := dur(&c.MaxClockSkew); err != nil || c.MaxClockSkew < 0 {
			return fmt.Errorf("%q is not a duration >= 0 (e.g. 5m; 0 or off turns the check off)", v)
		}
		if c.MaxClockSkew == 0 {
			c.MaxClockSkew = -1 // off, as distinct from unset
		}
	case "watch-interval":
		if v == "off" {
			c.WatchInterval = -1
			return nil
		}
		if err := dur(&c.WatchInterval); err != nil || c.WatchInterval <= 0 {
			return fmt.Errorf("%q is not a positive duration (e.g. 1s) or off", v)
		}
	case "auth", "tokens-file", "audit-log", "metrics-auth", "tls-cert", "tls-key", "tls-client-ca":
		c.AuthConfig.set(key, v)
	case "rate-limit", "rate-burst":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a whole number >= 0", v)
		}
		if key == "rate-limit" {
			c.RateLimit = n
		} else {
			c.RateBurst = n
		}
	}
	return nil
}

// readConfigFile reads the YAML configuration file named by file, or by
// JITAI_CONFIG when file is empty; an empty Config when neither names one.
func readConfigFile(file string, env func(string) string) (Config, error) {
	if file == "" {
		file = env("JITAI_CONFIG")
	}
	var c Config
	if file == "" {
		return c, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return c, fmt.Errorf("reading config: %w", err)
	}
	if err := c.loadFile(file, raw); err != nil {
		return c, err
	}
	return c, nil
}

// choose sets *dst to v if v is a or b.
func choose(dst *string, v, a, b string) error {
	if v != a && v != b {
		return fmt.Errorf("%q is not %s or %s", v, a, b)
	}
	*dst = v
	return nil
}

// parseBytes reads a size: a number of bytes, optionally with KiB, MiB or
// GiB.
func parseBytes(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	return n * mult, nil
}
