package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// runStudy implements `jitai study check DIR` and `jitai study test DIR`.
func runStudy(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || (args[0] != "check" && args[0] != "test") {
		fmt.Fprintln(stderr, "usage: jitai study check DIR | jitai study test DIR")
		return 2
	}
	fs := flag.NewFlagSet("study "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list every test")
	if err := fs.Parse(args[2:]); err != nil {
		return 2
	}
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		fmt.Fprintf(stderr, "catalogue: %v\n", err)
		return 1
	}
	dir := filepath.Clean(args[1])
	s, err := policies.LoadStudy(ctx, dir, cat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if args[0] == "check" {
		if err := host.Verify(s); err != nil { // plugin executables match their checksums
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok (study %s, policy revision %s, %d interventions)\n", dir, s.Config.ID, s.Revision[:12], s.Catalogue.Len())
		return 0
	}
	results, err := s.RunTests(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	passed, failed := 0, 0
	for _, r := range results {
		switch {
		case r.Skip:
		case r.Pass:
			passed++
			if *verbose {
				fmt.Fprintf(stdout, "PASS %s:%d %s (%s)\n", r.File, r.Line, r.Name, r.Duration)
			}
		default:
			failed++
			fmt.Fprintf(stdout, "FAIL %s:%d %s: %s\n", r.File, r.Line, r.Name, r.Err)
		}
	}
	fmt.Fprintf(stdout, "%s: %d passed, %d failed\n", s.Config.ID, passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}

// loadStudy loads the studies under dir, as serve does, and returns the one
// with the given id; the error lists the ids there are.
func loadStudy(ctx context.Context, dir, id string) (*policies.Study, error) {
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	all, err := policies.LoadStudies(ctx, dir, cat)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range all {
		if s.Config.ID == id {
			return s, nil
		}
		ids = append(ids, s.Config.ID)
	}
	return nil, fmt.Errorf("no study %q in %s (studies: %s)", id, dir, strings.Join(ids, ", "))
}
