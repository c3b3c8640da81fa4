package main

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/design"
)

// designParams are the flags of `jitai design`.
type designParams struct {
	factors    int
	runs       int
	resolution string
	generators string
	maxNodes   int64
	budget     time.Duration
	json       bool
}

// newDesignCmd is `jitai design --factors K (--runs N | --resolution R)`:
// two-level full and fractional factorial designs (minimum aberration by
// search, FrF2 conventions) from experiments/design.
func newDesignCmd() *cobra.Command {
	var p designParams
	cmd := &cobra.Command{
		Use:   "design --factors K (--runs N | --resolution R)",
		Short: "Two-level factorial designs: minimum aberration, aliases, resolution",
		Long: `Two-level full or fractional factorial design, FrF2 conventions: factors A, B,
C, ... (no I), runs in standard order (first factor changing fastest). Without
--generators the design is the minimum-aberration one, found by a search of
at most --max-nodes nodes (by default the budget a study's design is searched
with, so a design is proven here exactly when a study asking for it loads).
The report gives the generators, defining relation, word-length pattern,
resolution, aliases and clear two-factor interactions, and the lines that pin
the design in study.yaml.

Exit status: 0 done; 1 a failure; 2 usage error, or a request that cannot be
met (the message names the flag).`,
		Example: `  jitai design --factors 7 --runs 16
  jitai design --factors 5 --resolution V --json
  jitai design --factors 6 --runs 16 --generators "E=ABC,F=ABD"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := p.design(cmd)
			if err != nil {
				return err
			}
			if p.json {
				b, err := json.Marshal(d.Report())
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(b, '\n'))
				return err
			}
			return d.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.factors, "factors", 0, "number of two-level factors K (1 to 63) (required)")
	f.IntVar(&p.runs, "runs", 0, "number of runs N, a power of 2 (at most 4096)")
	f.StringVar(&p.resolution, "resolution", "", "wanted resolution R (3, 4, 5, ... or III, IV, V, ...): the smallest run size that reaches it")
	f.StringVar(&p.generators, "generators", "", `generators, comma-separated: "E=ABC,F=ABD" or Yates columns "7,11"`)
	f.Int64Var(&p.maxNodes, "max-nodes", design.DefaultMaxNodes, "search nodes the search may examine; past it the best design found is shown as not proven")
	f.DurationVar(&p.budget, "budget", 0, "wall-clock limit of the search (alone, it replaces the node limit); the result then depends on the machine, so pin the generators it finds")
	f.BoolVar(&p.json, "json", false, "print JSON instead of text")
	return cmd
}

// design checks the flags and builds the design.
func (p *designParams) design(cmd *cobra.Command) (*design.Design, error) {
	set := cmd.Flags().Changed
	if !set("factors") {
		return nil, usageErrorf("--factors is required")
	}
	if set("runs") && set("resolution") {
		return nil, usageErrorf("--runs and --resolution: give one of them")
	}
	if !set("runs") && !set("resolution") && !set("generators") {
		return nil, usageErrorf("give --runs N or --resolution R")
	}
	var o design.Options
	if set("budget") {
		if p.budget <= 0 {
			return nil, usageErrorf("--budget: %s is not a positive duration", p.budget)
		}
		o.Budget = p.budget
		if !set("max-nodes") {
			o.MaxNodes = -1
		}
	}
	if set("max-nodes") {
		if p.maxNodes <= 0 {
			return nil, usageErrorf("--max-nodes: %d is not a positive number of search nodes", p.maxNodes)
		}
		o.MaxNodes = p.maxNodes
	}
	req := design.Request{Factors: p.factors, Runs: p.runs}
	if set("resolution") {
		r, err := design.ParseResolution(p.resolution)
		if err != nil {
			return nil, usageErrorf("--resolution: %v", err)
		}
		req.Resolution = r
	}
	if set("generators") {
		req.Generators = splitList(p.generators)
		if req.Generators == nil {
			req.Generators = []string{}
		}
	}
	d, err := o.Build(req)
	var ie *design.InputError
	if errors.As(err, &ie) {
		return nil, usageErrorf("--%s: %s", ie.Field, ie.Problem)
	}
	return d, err
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
