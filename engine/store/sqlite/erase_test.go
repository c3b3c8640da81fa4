package sqlite

import (
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
