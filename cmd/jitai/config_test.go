package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// fakeEnv is an environment for loadConfig.
func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	return loadConfig(args, fakeEnv(env))
}

// loadConfig parses serve's flags args and loads the configuration as
// serve does.
func loadConfig(args []string, env func(string) string) (*Config, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := bindConfigFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return cf.load(fs, env)
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Addr: "127.0.0.1:8080", Studies: "policies/examples", Data: "data", Durability: "process", LogLevel: "info",
		ShutdownGrace: 15 * time.Second, RequestTimeout: 10 * time.Second, PolicyTimeout: 2 * time.Second, MaxClockSkew: 5 * time.Minute, WatchInterval: time.Second,
		Store: "embedded", Evaluator: "ir", Clock: "on",
		AuthConfig: AuthConfig{Auth: "none", TokensFile: filepath.Join("data", "tokens.json"), AuditLog: filepath.Join("data", "audit.jsonl"), MetricsAuth: "token"},
	}
	if *c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", *c, want)
	}
}

// TestConfigPrecedence: flags beat JITAI_* variables, which beat the YAML
// file, which beats the defaults, key by key.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "jitai.yaml", `
addr: 127.0.0.1:7001
studies: /srv/studies-file
data: /srv/data-file
durability: power
log_level: warn
shutdown_grace: 21s
request_timeout: 22s
policy_timeout: 3s
max_clock_skew: 2m
`)
	type layers struct {
		file  bool
		env   bool
		flags bool
	}
	for _, l := range []layers{{}, {file: true}, {env: true}, {flags: true}, {file: true, env: true}, {file: true, flags: true}, {env: true, flags: true}, {file: true, env: true, flags: true}} {
		name := "defaults"
		if l.file {
			name += "+file"
		}
		if l.env {
			name += "+env"
		}
		if l.flags {
			name += "+flags"
		}
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			var args []string
			if l.file {
				args = append(args, "--config", file)
			}
			if l.env {
				env["JITAI_ADDR"] = "127.0.0.1:7002"
				env["JITAI_DATA"] = "/srv/data-env"
				env["JITAI_SHUTDOWN_GRACE"] = "31s"
				env["JITAI_LOG_LEVEL"] = "error"
				env["JITAI_MAX_CLOCK_SKEW"] = "0"
			}
			if l.flags {
				args = append(args, "--addr", "127.0.0.1:7003", "--shutdown-grace=41s", "--durability", "process", "--policy-timeout", "4s")
			}
			c, err := load(t, args, env)
			if err != nil {
				t.Fatal(err)
			}
			pick := func(def, file, env, flag any) any {
				switch {
				case l.flags && flag != nil:
					return flag
				case l.env && env != nil:
					return env
				case l.file && file != nil:
					return file
				}
				return def
			}
			checks := []struct {
				key       string
				got, want any
			}{
				{"addr", c.Addr, pick("127.0.0.1:8080", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003")},
				{"studies", c.Studies, pick("policies/examples", "/srv/studies-file", nil, nil)},
				{"data", c.Data, pick("data", "/srv/data-file", "/srv/data-env", nil)},
				{"durability", c.Durability, pick("process", "power", nil, "process")},
				{"log_level", c.LogLevel, pick("info", "warn", "error", nil)},
				{"shutdown_grace", c.ShutdownGrace, pick(15*time.Second, 21*time.Second, 31*time.Second, 41*time.Second)},
				{"request_timeout", c.RequestTimeout, pick(10*time.Second, 22*time.Second, nil, nil)},
				{"policy_timeout", c.PolicyTimeout, pick(2*time.Second, 3*time.Second, nil, 4*time.Second)},
				{"max_clock_skew", c.MaxClockSkew, pick(5*time.Minute, 2*time.Minute, time.Duration(-1), nil)}, // JITAI_MAX_CLOCK_SKEW=0 is off
			}
			for _, ch := range checks {
				if ch.got != ch.want {
					t.Errorf("%s = %v, want %v", ch.key, ch.got, ch.want)
				}
			}
		})
	}
}

func TestConfigFileFromEnvAndFlag(t *testing.T) {
	a := writeFile(t, "a.yaml", "addr: 127.0.0.1:7101\n")
	b := writeFile(t, "b.yaml", "addr: 127.0.0.1:7102\n")
	c, err := load(t, nil, map[string]string{"JITAI_CONFIG": a})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7101" {
		t.Errorf("JITAI_CONFIG: addr %s, want the file's", c.Addr)
	}
	c, err = load(t, []string{"--config", b}, map[string]string{"JITAI_CONFIG": a})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:7102" {
		t.Errorf("--config beats JITAI_CONFIG: addr %s", c.Addr)
	}
	empty := writeFile(t, "empty.yaml", "")
	if _, err := load(t, []string{"--config", empty}, nil); err != nil {
		t.Errorf("an empty file is a valid (empty) configuration: %v", err)
	}
	comments := writeFile(t, "comments.yaml", "# nothing set here\n")
	if _, err := load(t, []string{"--config", comments}, nil); err != nil {
		t.Errorf("a file of comments is a valid (empty) configuration: %v", err)
	}
}

// TestConfigErrors: each mistake is refused with a message naming where it
// is (flag, variable or file), the key and what to write instead.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string // YAML file content, passed with --config
		want []string
	}{
		{name: "bad duration flag", args: []string{"--shutdown-grace", "soon"}, want: []string{"--shutdown-grace", `"soon"`, "duration"}},
		{name: "duration without unit in env", env: map[string]string{"JITAI_REQUEST_TIMEOUT": "30"}, want: []string{"JITAI_REQUEST_TIMEOUT", `"30"`, "duration"}},
		// A YAML error names the file, the key and the fix, as flag and env errors do.
		{name: "bad duration in file", file: "policy_timeout: fast\n", want: []string{"jitai.yaml", "policy_timeout", "duration"}},
		{name: "duration without unit in file", file: "shutdown_grace: 30\n", want: []string{"jitai.yaml", "shutdown_grace", "duration"}},
		{name: "negative duration", args: []string{"--policy-timeout", "-1s"}, want: []string{"policy_timeout", "positive"}},
		{name: "unknown evaluator", args: []string{"--evaluator", "wasm"}, want: []string{"evaluator \"wasm\"", "ir or topdown"}},
		{name: "negative clock skew", env: map[string]string{"JITAI_MAX_CLOCK_SKEW": "-5s"}, want: []string{"JITAI_MAX_CLOCK_SKEW", `"-5s"`, ">= 0"}},
		{name: "clock skew in file", file: "max_clock_skew: soon\n", want: []string{"jitai.yaml", "max_clock_skew", "off"}},
		{name: "unknown YAML key", file: "adress: 127.0.0.1:9000\n", want: []string{"jitai.yaml", "adress"}},
		{name: "flag name as YAML key", file: "log-level: debug\n", want: []string{"jitai.yaml", "log-level"}},
		{name: "bad durability flag", args: []string{"--durability", "disk"}, want: []string{"durability", `"disk"`, "process", "power"}},
		{name: "bad durability env", env: map[string]string{"JITAI_DURABILITY": "fsync"}, want: []string{"durability", `"fsync"`, "process", "power"}},
		{name: "bad durability file", file: "durability: sometimes\n", want: []string{"durability", `"sometimes"`, "process", "power"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"log_level", "loud", "debug"}},
		{name: "bad addr", env: map[string]string{"JITAI_ADDR": "8080"}, want: []string{"addr", "8080", "host:port"}},
		{name: "unknown flag", args: []string{"--adress", "x"}, want: []string{"adress"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/jitai.yaml"}, want: []string{"/nonexistent/jitai.yaml"}},
		{name: "two mistakes", args: []string{"--durability", "x", "--log-level", "y"}, want: []string{"durability", "log_level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeFile(t, "jitai.yaml", c.file)}, args...)
			}
			cfg, err := load(t, args, c.env)
			if err == nil {
				t.Fatalf("accepted: %+v", cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestConfigFlagsMirrorKeys: every configuration key is a flag, a JITAI_*
// variable and a YAML key of the same name.
func TestConfigFlagsMirrorKeys(t *testing.T) {
	for _, k := range configKeys {
		yamlKey := strings.ReplaceAll(k.key, "-", "_")
		envKey := "JITAI_" + strings.ToUpper(yamlKey)
		var val string
		switch k.key {
		case "addr":
			val = "127.0.0.1:9999"
		case "durability":
			val = "power"
		case "log-level":
			val = "debug"
		case "shutdown-grace", "request-timeout", "policy-timeout", "max-clock-skew", "watch-interval":
			val = "7s"
		case "rate-limit", "rate-burst":
			val = "7"
		case "store":
			val = "redis"
		case "redis-url":
			val = "redis://127.0.0.1:6380/2"
		case "auth":
			val = "token"
		case "metrics-auth":
			val = "none"
		case "evaluator":
			val = "topdown"
		case "clock":
			val = "off"
		case "wal-limit", "min-free":
			val = "3MiB"
		case "erase-rewrite-aof":
			val = "off"
		default:
			val = "/x/" + k.key
		}
		fromFlag, err := load(t, []string{"--" + k.key, val}, nil)
		if err != nil {
			t.Fatalf("--%s %s: %v", k.key, val, err)
		}
		fromEnv, err := load(t, nil, map[string]string{envKey: val})
		if err != nil {
			t.Fatalf("%s=%s: %v", envKey, val, err)
		}
		fromFile, err := load(t, []string{"--config", writeFile(t, "c.yaml", yamlKey+": "+val+"\n")}, nil)
		if err != nil {
			t.Fatalf("YAML %s: %s: %v", yamlKey, val, err)
		}
		def, _ := load(t, nil, nil)
		if *fromFlag == *def {
			t.Errorf("--%s %s changed nothing", k.key, val)
		}
		if *fromEnv != *fromFlag || *fromFile != *fromFlag {
			t.Errorf("key %s: flag gives %+v, env %+v, file %+v", k.key, *fromFlag, *fromEnv, *fromFile)
		}
	}
}

// Sizes (wal_limit, min_free) are bytes, or KiB, MiB, GiB.
func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "64MiB": 64 << 20, "2GiB": 2 << 30, "512KiB": 512 << 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "64MB", "-1", "1.5GiB", "9999999999GiB"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}
