package policies

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/experiments/design"
)

// FuzzParseConfig feeds arbitrary text to the study.yaml parser and, when
// it parses, builds the study's design from it, as LoadStudy does. Neither
// may panic; a config that parses has an id and at least one decision
// point. Seeds are the example studies and testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	examples, err := filepath.Glob("examples/*/study.yaml")
	if err != nil || len(examples) == 0 {
		f.Fatalf("no example studies (%v)", err)
	}
	for _, p := range examples {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("id: x\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("factors:\n  - name: a\n    levels: [x]\n    probability: .nan\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// An input that hangs crashes the worker with every stack printed,
		// so the fuzzer keeps it as a failure.
		defer time.AfterFunc(10*time.Second, func() { panic("input took over 10 s") }).Stop()
		cfg, err := ParseConfig("study.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if cfg.ID == "" || len(cfg.DecisionPoints) == 0 {
			t.Fatalf("config without id or decision points was accepted: %+v", cfg)
		}
		_, _ = buildDesign(cfg, design.DefaultMaxNodes, nil)
	})
}
