package sqlite

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/store/storetest"
)

func TestEraser(t *testing.T) {
	storetest.RunEraser(t, func(t *testing.T) trial.Store {
		s, err := Open(filepath.Join(t.TempDir(), "jitai.db"), Options{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestEraseLeavesNoBytes greps jitai.db, jitai.db-wal and jitai.db-shm
// after an erasure, while the store is still open: no byte of the
// participant is left. Before the erasure a PASSIVE checkpoint copies the
// log into the database file and leaves the log as it is, so that the
// participant is in both files, as on a server that has run for a while.
func TestEraseLeavesNoBytes(t *testing.T) {
	storetest.RunEraseLeavesNoBytes(t, func(t *testing.T) (trial.Store, storetest.Files) {
		path := filepath.Join(t.TempDir(), "jitai.db")
		s, err := Open(path, Options{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		first := true
		return s, func(t *testing.T) map[string][]byte {
			if first {
				first = false
				var busy, logged, done int
				if err := s.ckpt.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &done); err != nil || done == 0 {
					t.Fatalf("checkpoint before erasure: %d pages copied, %v", done, err)
				}
			}
			return readFiles(t, path, path+"-wal", path+"-shm")
		}
	})
}

// readFiles reads the files that exist of paths.
func readFiles(t *testing.T, paths ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// A new database is created with auto_vacuum INCREMENTAL, and a small one
// created without it is converted when opened.
func TestAutoVacuum(t *testing.T) {
	mode := func(path string) int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var m int
		if err := db.QueryRow("PRAGMA auto_vacuum").Scan(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	fresh := openTemp(t, Options{})
	if m := mode(fresh.path); m != 2 {
		t.Errorf("new database: auto_vacuum %d, want 2 (incremental)", m)
	}
	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", old+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE leftover (x TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if m := mode(old); m != 0 {
		t.Fatalf("old database: auto_vacuum %d before opening, want 0", m)
	}
	s, err := Open(old, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if m := mode(old); m != 2 {
		t.Errorf("old database: auto_vacuum %d after opening, want 2 (converted)", m)
	}
}
