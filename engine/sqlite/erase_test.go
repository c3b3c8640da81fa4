package sqlite

import (
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/storetest"
)

func TestEraser(t *testing.T) {
	storetest.RunEraser(t, func(t *testing.T) engine.Store {
		s, err := Open(filepath.Join(t.TempDir(), "jitai.db"), Options{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
