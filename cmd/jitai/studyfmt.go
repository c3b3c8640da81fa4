package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// formatRego formats DIR/policy/*.rego (policies and tests) as `opa fmt`
// does for Rego v1, and returns the files whose text changes. With write
// they are rewritten in place (through a temporary file and a rename, so a
// watching server never reads half a file).
func formatRego(dir string, write bool) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "policy", "*.rego"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var changed []string
	var errs []error
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, err := format.SourceWithOpts(p, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot format: %w", p, err))
			continue
		}
		if bytes.Equal(out, src) {
			continue
		}
		changed = append(changed, p)
		if !write {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".fmt")
		if err := os.WriteFile(tmp, out, fi.Mode().Perm()); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(tmp, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return changed, fmt.Errorf("%d file(s) could not be formatted:\n%w", len(errs), errors.Join(errs...))
	}
	return changed, nil
}
