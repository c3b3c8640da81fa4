package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/jitai/jitai/engine/store/sqlite"
)

// openReadOnlyStore opens the embedded store under dataDir read-only (it
// may run beside `jitai serve`); a missing store gets an error that says
// what to pass.
func openReadOnlyStore(dataDir string) (*sqlite.Store, error) {
	dbPath := filepath.Join(dataDir, "jitai.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("--data %s: no store at %s: pass --data DIR, the data folder that jitai serve uses", dataDir, dbPath)
	}
	st, err := sqlite.OpenReadOnly(dbPath, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the embedded store %s: %w", dbPath, err)
	}
	return st, nil
}
