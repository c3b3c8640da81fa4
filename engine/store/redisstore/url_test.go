package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestURLForms(t *testing.T) {
	cases := []struct {
		name, url string
		kind      string
		check     func(t *testing.T, c redis.UniversalClient)
		wantErr   string
	}{
		{name: "Single", url: "redis://127.0.0.1:6379/3", kind: kindSingle, check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "127.0.0.1:6379" || o.DB != 3 || o.TLSConfig != nil {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "SingleDefaultPort", url: "redis://localhost", kind: kindSingle, check: func(t *testing.T, c redis.UniversalClient) {
			if a := c.(*redis.Client).Options().Addr; a != "localhost:6379" {
				t.Fatalf("addr %s", a)
			}
		}},
		{name: "TLS", url: "rediss://user:secret@redis.example:6380/0", kind: kindSingle, check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" || o.Username != "user" || o.Password != "secret" {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "Unix", url: "unix:///run/redis.sock?db=1", kind: kindSingle, check: func(t *testing.T, c redis.UniversalClient) {
			if o := c.(*redis.Client).Options(); o.Network != "unix" || o.Addr != "/run/redis.sock" || o.DB != 1 {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "Cluster", url: "redis+cluster://:p%40ss@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3?read_timeout=3s", kind: kindCluster, check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			want := []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:6379"}
			if strings.Join(o.Addrs, ",") != strings.Join(want, ",") || o.Password != "p@ss" || o.ReadTimeout != 3*time.Second || o.TLSConfig != nil {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "ClusterTLS", url: "rediss+cluster://h1:7000,[::1]:7001/", kind: kindCluster, check: func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.ClusterClient).Options()
			if o.TLSConfig == nil || strings.Join(o.Addrs, ",") != "h1:7000,[::1]:7001" {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "Sentinel", url: "redis+sentinel://s1:26379,s2:26380/mymaster/4?password=m", kind: kindSentinel},
		{name: "ClusterDB", url: "redis+cluster://h1:7000,h2:7001/2", wantErr: "only database 0"},
		{name: "ClusterEmptyHost", url: "redis+cluster://h1:7000,,h2", wantErr: "empty host"},
		{name: "ClusterUnknownOption", url: "redis+cluster://h1:7000?colour=red", wantErr: "unexpected option"},
		{name: "SentinelNoMaster", url: "redis+sentinel://s1:26379", wantErr: "name the master"},
		{name: "SeveralHostsSingle", url: "redis://h1:6379,h2:6379", wantErr: "redis+cluster://"},
		{name: "Scheme", url: "http://h1:6379", wantErr: "redis url scheme"},
		{name: "NoScheme", url: "127.0.0.1:6379", wantErr: "no scheme"},
		{name: "BadDB", url: "redis://:hunter2@h1:6379/x", wantErr: "database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, kind, err := newClient(c.url, Options{})
			if c.wantErr != "" {
				if err == nil {
					client.Close()
					t.Fatalf("newClient(%s) succeeded, want an error about %q", c.url, c.wantErr)
				}
				if !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q: want it to mention %q and not the password", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("newClient(%s): %v", c.url, err)
			}
			defer client.Close()
			if kind != c.kind {
				t.Fatalf("kind %s, want %s", kind, c.kind)
			}
			if c.check != nil {
				c.check(t, client)
			}
		})
	}
}

// TestOptionPrecedence checks that Options beat the URL's query and the
// URL beats the defaults.
func TestOptionPrecedence(t *testing.T) {
	cases := []struct {
		name            string
		url             string
		opts            Options
		pool, retries   int
		read, dial      time.Duration
		contextTimeouts bool
	}{
		{"Defaults", "redis://h:1", Options{}, defaultPoolSize(), defaultMaxRetries, defaultReadTimeout, defaultDialTimeout, true},
		{"URL", "redis://h:1?pool_size=7&read_timeout=4s&max_retries=5", Options{}, 7, 5, 4 * time.Second, defaultDialTimeout, true},
		{"OptionsWin", "redis://h:1?pool_size=7&read_timeout=4s", Options{PoolSize: 9, ReadTimeout: 250 * time.Millisecond, DialTimeout: time.Second, MaxRetries: -1}, 9, 0 /* go-redis stores "none" as 0 */, 250 * time.Millisecond, time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, _, err := newClient(c.url, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			o := client.(*redis.Client).Options()
			if o.PoolSize != c.pool || o.MaxRetries != c.retries || o.ReadTimeout != c.read || o.DialTimeout != c.dial || o.ContextTimeoutEnabled != c.contextTimeouts {
				t.Fatalf("pool %d retries %d read %s dial %s ctx %v; want %d %d %s %s %v",
					o.PoolSize, o.MaxRetries, o.ReadTimeout, o.DialTimeout, o.ContextTimeoutEnabled, c.pool, c.retries, c.read, c.dial, c.contextTimeouts)
			}
		})
	}
	// The cluster client gets the same.
	client, _, err := newClient("redis+cluster://h1:1,h2:2?pool_size=7", Options{ReadTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if o := client.(*redis.ClusterClient).Options(); o.PoolSize != 7 || o.ReadTimeout != 3*time.Second || o.MaxRetries != defaultMaxRetries {
		t.Fatalf("cluster options %+v", o)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"Zero", Options{}, ""},
		{"Prefix", Options{KeyPrefix: "a{b}:"}, "key_prefix"},
		{"Pool", Options{PoolSize: -1}, "pool_size"},
		{"Retries", Options{MaxRetries: -2}, "max_retries"},
		{"Timeout", Options{ReadTimeout: -time.Second}, "read_timeout"},
		{"TTL", Options{IdempotencyTTL: time.Microsecond}, "idempotency_ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(t.Context(), "redis://127.0.0.1:1", c.opts, nil)
			if c.wantErr == "" {
				return // Open may succeed (Redis unreachable is not an error)
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Open error %v, want one about %s", err, c.wantErr)
			}
		})
	}
}
