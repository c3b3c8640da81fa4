package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/simulate"
)

// simulateParams are the flags of `jitai simulate`.
type simulateParams struct {
	studyDir     string
	participants int
	days         int
	seed         uint64
	cohort       string
	out          string
	start        string
	workers      int
	cpuProfile   string
}

// newSimulateCmd is `jitai simulate`: a synthetic cohort through the real
// engine, and a report (docs/simulate.md).
func newSimulateCmd() *cobra.Command {
	var p simulateParams
	cmd := &cobra.Command{
		Use:   "simulate --study-dir DIR --out REPORT_DIR",
		Short: "Run a synthetic cohort through the real engine and report how the study behaves",
		Long: `Run a synthetic cohort through the real engine (policy, randomisation, burden
limits, store, and the trial clock that decides scheduled points and delivers
them, here to a simulated phone) and write a report: decisions, the delivery
funnel, treatment rates, availability, burden, and checks of the study's
design. See docs/simulate.md.

Exit status: 0 every check passed; 1 a check failed or the run failed; 2 usage
error.`,
		Example: "  jitai simulate --study-dir policies/examples/stress-mrt --participants 500 --days 90 --seed 1 --out report/",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd.Context(), p, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.studyDir, "study-dir", "", "the study folder (study.yaml and policy/) (required)")
	f.IntVar(&p.participants, "participants", 100, "number of synthetic participants")
	f.IntVar(&p.days, "days", 30, "study days per participant")
	f.Uint64Var(&p.seed, "seed", 1, "seed of the cohort and of the decision ids: the same seed gives the same report")
	f.StringVar(&p.cohort, "cohort", "", "cohort.yaml (default: the built-in cohort, docs/simulate.md)")
	f.StringVar(&p.out, "out", "", "folder for the report, created if needed (required)")
	f.StringVar(&p.start, "start", simulate.DefaultStart.Format(time.DateOnly), "first study day, YYYY-MM-DD")
	f.IntVar(&p.workers, "workers", 0, "participants simulated in parallel (default: the number of CPUs)")
	f.StringVar(&p.cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	return cmd
}

// validate checks the flags and returns the first study day.
func (p *simulateParams) validate() (time.Time, error) {
	if p.studyDir == "" || p.out == "" {
		return time.Time{}, usageErrorf("--study-dir and --out are required (e.g. --study-dir policies/examples/stress-mrt --out report/)")
	}
	if p.participants < 1 || p.days < 1 {
		return time.Time{}, usageErrorf("--participants and --days must be at least 1")
	}
	day, err := time.Parse(time.DateOnly, p.start)
	if err != nil {
		return time.Time{}, usageErrorf("--start %q: use a date such as 2026-03-02", p.start)
	}
	return day, nil
}

// runSimulate simulates the cohort, writes the report and prints its
// summary.
func runSimulate(ctx context.Context, p simulateParams, stdout, stderr io.Writer) error {
	day, err := p.validate()
	if err != nil {
		return err
	}
	cohort := simulate.DefaultCohort()
	if p.cohort != "" {
		if cohort, err = simulate.LoadCohort(p.cohort); err != nil {
			return err
		}
	}
	study, err := loadStudyFolder(ctx, "--study-dir", p.studyDir)
	if err != nil {
		return err
	}
	if p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// Collecting less often trades memory (modest here: the records go to
	// a spill file in the report folder) for CPU.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	if err := os.MkdirAll(p.out, 0o755); err != nil {
		return fmt.Errorf("creating the report folder: %w", err)
	}

	opts := simulate.Options{Study: study, Cohort: cohort, Participants: p.participants, Days: p.days, Seed: p.seed, Start: day, Workers: p.workers, SpillDir: p.out}
	bar := newProgressBar(stderr)
	if bar != nil {
		opts.Progress = bar.update
	}
	run, err := simulate.Simulate(ctx, opts)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	defer run.Close()
	participants, err := run.Store.Participants(ctx, study.Config.ID)
	if err != nil {
		return err
	}
	report := simulate.Build(run, participants)
	if err := simulate.Write(ctx, p.out, run, report); err != nil {
		return err
	}
	if err := simulate.Summary(stdout, report); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "simulated %d decisions in %s (%.0f decisions/s); report in %s\n",
		report.Totals.Decisions, run.Wall.Round(time.Millisecond), float64(report.Totals.Decisions)/run.Wall.Seconds(), filepath.Join(p.out, "report.html"))
	for _, c := range report.Checks {
		if !c.OK {
			return exitWith(exitFailure)
		}
	}
	return nil
}

// progressBar draws a bar on a terminal.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	start time.Time
}

// newProgressBar returns a bar when w is a terminal, else nil.
func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &progressBar{w: w, start: time.Now()}
}

// update is called concurrently by the workers; it redraws at most ten
// times a second.
func (b *progressBar) update(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if done != total && now.Sub(b.last) < 100*time.Millisecond {
		return
	}
	b.last = now
	const width = 30
	filled := width * done / total
	fmt.Fprintf(b.w, "\r[%s%s] %3d%%  %d/%d participant-days  %s ", strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		100*done/total, done, total, now.Sub(b.start).Round(time.Second))
}

func (b *progressBar) finish() { fmt.Fprint(b.w, "\r\033[K") }
