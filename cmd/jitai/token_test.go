package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"token", "create", "--role", "app", "--study", "stress-mrt", "--name", "phone-app", "--data", dir}, &out, &errb); code != 0 {
		t.Fatalf("create: %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if !strings.HasPrefix(tok, "jitai_") {
		t.Fatalf("token %q", tok)
	}
	raw, err := os.ReadFile(filepath.Join(dir, tokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) {
		t.Error("the token file holds the plaintext token")
	}
	out.Reset()
	if code := run([]string{"token", "list", "--data", dir}, &out, &errb); code != 0 || !strings.Contains(out.String(), "phone-app") || strings.Contains(out.String(), tok) {
		t.Errorf("list: %d: %s", code, out.String())
	}
	if code := run([]string{"token", "create", "--role", "app", "--data", dir}, &out, &errb); code == 0 {
		t.Error("an app token without a study was created")
	}
	if code := run([]string{"token", "revoke", "--data", dir, "phone-app"}, &out, &errb); code != 0 {
		t.Errorf("revoke: %d: %s", code, errb.String())
	}
}

// TestRefuseNonLoopbackWithoutAuth: serve will not listen on a public
// address with auth none, and says how to fix it.
func TestRefuseNonLoopbackWithoutAuth(t *testing.T) {
	for addr, refuse := range map[string]bool{"0.0.0.0:0": true, ":0": true, "192.0.2.1:8080": true, "[::]:0": true, "127.0.0.1:0": false, "localhost:0": false, "[::1]:0": false} {
		err := checkListen(addr, &AuthConfig{Auth: "none"})
		if (err != nil) != refuse {
			t.Errorf("%s: %v, refuse %v", addr, err, refuse)
		}
		if err := checkListen(addr, &AuthConfig{Auth: "token"}); err != nil {
			t.Errorf("%s with auth token: %v", addr, err)
		}
	}
	cfg, err := loadConfig([]string{"--addr", "0.0.0.0:0", "--data", t.TempDir(), "--studies", "../../policies/examples"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = serve(ctx, cfg, zap.NewNop(), nil)
	if err == nil || !strings.Contains(err.Error(), "without authentication") || !strings.Contains(err.Error(), "auth: token") {
		t.Errorf("serve on 0.0.0.0 with auth none: %v", err)
	}
}
