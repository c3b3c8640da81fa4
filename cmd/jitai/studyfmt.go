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
	"github.com/spf13/cobra"
)

// newStudyFmtCmd is `jitai study fmt DIR`: it formats the study's Rego files with OPA's formatter.
// study.yaml and scenario files are left alone: a YAML round trip can move
// or drop comments, and a study file's comments are part of its protocol.
func newStudyFmtCmd() *cobra.Command {
	var p studyFmtParams
	cmd := &cobra.Command{
		Use:   "fmt DIR",
		Short: "Format a study's Rego files as opa fmt does (Rego v1)",
		Long: `List the study's Rego files (policy/*.rego) whose formatting differs from
opa fmt's; -w rewrites them. study.yaml and scenario files are left alone.

Exit status: 0 done (with --check: every file formatted); 1 a file could not
be formatted or, with --check, is not formatted; 2 usage error.`,
		Example: `  jitai study fmt --check policies/examples/stress-mrt
  jitai study fmt -w policies/examples/stress-mrt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := filepath.Clean(args[0])
			changed, err := formatRego(dir, p.write)
			for _, f := range changed {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			if err != nil {
				return err
			}
			if p.check && len(changed) > 0 {
				return fmt.Errorf("%d file(s) not formatted: run jitai study fmt -w %s", len(changed), dir)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&p.write, "write", "w", false, "rewrite the files that are not formatted")
	cmd.Flags().BoolVar(&p.check, "check", false, "list the files that are not formatted and exit 1 if there are any")
	return cmd
}

// studyFmtParams are the flags of `jitai study fmt`.
type studyFmtParams struct {
	write, check bool
}

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
