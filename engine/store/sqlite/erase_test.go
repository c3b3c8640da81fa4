package sqlite

import (
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
