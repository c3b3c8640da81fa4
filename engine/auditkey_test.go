package engine_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
)

// TestAuditKeyKeptWithTheData: the audit pseudonym key is made at the
// first start and kept in the store, so two engines on one store, and an
// engine started again on the reopened file, use the same key; another
// store (another deployment) has another key.
func TestAuditKeyKeptWithTheData(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	open := func(path string) (*sqlite.Store, *engine.Engine) {
		t.Helper()
		st, err := sqlite.Open(path, sqlite.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Components{Store: st, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return st, eng
	}
	key := func(eng *engine.Engine) []byte {
		t.Helper()
		k, err := eng.AuditKey(ctx)
		if err != nil {
			t.Fatalf("AuditKey: %v", err)
		}
		if len(k) < 16 {
			t.Fatalf("audit key of %d bytes", len(k))
		}
		return k
	}
	path := filepath.Join(t.TempDir(), "jitai.db")
	st, eng1 := open(path)
	k1 := key(eng1)
	eng2, err := engine.New(engine.Components{Store: st, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if k2 := key(eng2); !bytes.Equal(k1, k2) {
		t.Error("a second engine on the same store made another key")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, eng3 := open(path)
	defer st.Close()
	if k3 := key(eng3); !bytes.Equal(k1, k3) {
		t.Error("the key changed when the store was reopened")
	}
	other, eng4 := open(filepath.Join(t.TempDir(), "other.db"))
	defer other.Close()
	if k4 := key(eng4); bytes.Equal(k1, k4) {
		t.Error("two stores share one key: it is not random")
	}
}
