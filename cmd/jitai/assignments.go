package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"
)

// balanceReport is the between-person assignment balance of one study.
type balanceReport struct {
	Study   string           `json:"study"`
	Factors []string         `json:"factors"`
	Cells   int              `json:"cells"`
	Strata  []stratumBalance `json:"strata"`
	// Mismatches lists participants whose stored row is not the one the
	// seed and their enrolment order give (should be empty).
	Mismatches []string `json:"mismatches"`
	Balanced   bool     `json:"balanced"`
}

type stratumBalance struct {
	Stratum      string                    `json:"stratum"`
	Participants int                       `json:"participants"`
	CellCounts   []int                     `json:"cell_counts"`
	MaxDiff      int                       `json:"max_cell_difference"`
	Levels       map[string]map[string]int `json:"levels"`
}

// assignmentsParams are the flags of `jitai assignments`.
type assignmentsParams struct {
	study   string
	studies string
	data    string
	json    bool
}

// newAssignmentsCmd is `jitai assignments --study ID`.
func newAssignmentsCmd() *cobra.Command {
	var p assignmentsParams
	cmd := &cobra.Command{
		Use:   "assignments --study ID",
		Short: "Between-person assignment balance per stratum",
		Long: `Count the between-person design rows and factor levels of a study's
participants per stratum, from the embedded store (read-only), and re-derive
every participant's row from the seed and their enrolment order.

Exit status: 0 balanced; 1 not balanced, or a failure; 2 usage error.`,
		Example: "  jitai assignments --study mood-most --studies policies/examples --data data",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.study == "" {
				return usageErrorf("--study is required: the id of the study (e.g. --study mood-most)")
			}
			rep, err := assignmentReport(cmd.Context(), p.study, p.studies, p.data)
			if err != nil {
				return err
			}
			if p.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				writeBalance(cmd.OutOrStdout(), rep)
			}
			if !rep.Balanced {
				return exitWith(exitFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.study, "study", "", "study id (required)")
	f.StringVar(&p.studies, "studies", "policies/examples", "folder of study folders, as for serve")
	f.StringVar(&p.data, "data", "data", "data folder of the embedded store, as for serve")
	f.BoolVar(&p.json, "json", false, "JSON output")
	return cmd
}

func assignmentReport(ctx context.Context, studyID, studiesDir, dataDir string) (*balanceReport, error) {
	study, err := loadStudy(ctx, studiesDir, studyID)
	if err != nil {
		return nil, err
	}
	rt, err := decision.NewRuntime(study)
	if err != nil {
		return nil, err
	}
	store, err := openReadOnlyStore(dataDir)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	ps, err := store.Participants(ctx, studyID)
	if err != nil {
		return nil, err
	}
	return balance(rt, ps), nil
}

// balance counts design rows and factor levels per stratum and re-derives
// every participant's row from the seed and their enrolment order.
func balance(rt *decision.Runtime, ps []*trial.Participant) *balanceReport {
	rep := &balanceReport{Study: rt.Config.ID, Cells: len(rt.Design()), Balanced: true, Mismatches: []string{}}
	for _, f := range rt.BetweenFactors() {
		rep.Factors = append(rep.Factors, f.Name)
	}
	byStratum := map[string]*stratumBalance{}
	for _, p := range ps {
		sb := byStratum[p.Stratum]
		if sb == nil {
			sb = &stratumBalance{Stratum: p.Stratum, CellCounts: make([]int, rep.Cells), Levels: map[string]map[string]int{}}
			byStratum[p.Stratum] = sb
		}
		sb.Participants++
		if rep.Cells > 0 {
			if p.Row >= 0 && p.Row < rep.Cells {
				sb.CellCounts[p.Row]++
			}
			if want := rt.AssignedRow(p.Stratum, p.Seq); want != p.Row {
				rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s (stratum %q, seq %d): row %d, seed gives %d", p.ID, p.Stratum, p.Seq, p.Row, want))
			}
		}
		for f, l := range p.Assignment {
			if sb.Levels[f] == nil {
				sb.Levels[f] = map[string]int{}
			}
			sb.Levels[f][l]++
		}
	}
	keys := make([]string, 0, len(byStratum))
	for k := range byStratum {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sb := byStratum[k]
		if rep.Cells > 0 {
			lo, hi := sb.CellCounts[0], sb.CellCounts[0]
			for _, c := range sb.CellCounts {
				lo, hi = min(lo, c), max(hi, c)
			}
			sb.MaxDiff = hi - lo
			if sb.MaxDiff > 1 {
				rep.Balanced = false
			}
		}
		rep.Strata = append(rep.Strata, *sb)
	}
	if len(rep.Mismatches) > 0 {
		rep.Balanced = false
	}
	return rep
}

func writeBalance(w io.Writer, rep *balanceReport) {
	fmt.Fprintf(w, "study %s: %d between-person factors (%s), %d cells\n", rep.Study, len(rep.Factors), strings.Join(rep.Factors, ", "), rep.Cells)
	if rep.Cells == 0 {
		fmt.Fprintln(w, "no between-person factors: nothing to balance")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "stratum\tparticipants\tcell min\tcell max\tmax diff\tlevels")
	for _, sb := range rep.Strata {
		lo, hi := 0, 0
		if len(sb.CellCounts) > 0 {
			lo, hi = sb.CellCounts[0], sb.CellCounts[0]
			for _, c := range sb.CellCounts {
				lo, hi = min(lo, c), max(hi, c)
			}
		}
		var lv []string
		for _, f := range rep.Factors {
			var parts []string
			for l, n := range sb.Levels[f] {
				parts = append(parts, fmt.Sprintf("%s=%d", l, n))
			}
			sort.Strings(parts)
			lv = append(lv, f+"("+strings.Join(parts, " ")+")")
		}
		name := sb.Stratum
		if name == "" {
			name = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", name, sb.Participants, lo, hi, sb.MaxDiff, strings.Join(lv, " "))
	}
	_ = tw.Flush()
	if len(rep.Mismatches) > 0 {
		fmt.Fprintf(w, "MISMATCH: %d participants' rows differ from what the seed gives:\n", len(rep.Mismatches))
		for _, m := range rep.Mismatches {
			fmt.Fprintln(w, "  "+m)
		}
	}
	if rep.Balanced {
		fmt.Fprintln(w, "balanced: every stratum's cells differ by at most one, and every assignment matches the seed")
	} else {
		fmt.Fprintln(w, "NOT BALANCED")
	}
}
