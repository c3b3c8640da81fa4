package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/simulate"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// runSimulate implements `jitai simulate`: a synthetic cohort through the
// real engine, and a report (docs/simulate.md).
func runSimulate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	studyDir := fs.String("study", "", "the study folder (study.yaml and policy/)")
	n := fs.Int("participants", 100, "number of synthetic participants")
	days := fs.Int("days", 30, "study days per participant")
	seed := fs.Uint64("seed", 1, "seed of the cohort and of the decision ids: the same seed gives the same report")
	cohortFile := fs.String("cohort", "", "cohort.yaml (default: the built-in cohort, docs/simulate.md)")
	out := fs.String("out", "", "folder for the report (created if needed)")
	start := fs.String("start", simulate.DefaultStart.Format(time.DateOnly), "first study day, YYYY-MM-DD")
	workers := fs.Int("workers", 0, "participants simulated in parallel (default: the number of CPUs)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jitai simulate --study DIR --out REPORT_DIR [--participants N] [--days D] [--seed S] [--cohort cohort.yaml] [--start YYYY-MM-DD]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitai simulate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *studyDir == "" || *out == "" {
		fmt.Fprintln(stderr, "jitai simulate: --study and --out are required")
		fs.Usage()
		return 2
	}
	if *n < 1 || *days < 1 {
		fmt.Fprintln(stderr, "jitai simulate: --participants and --days must be at least 1")
		return 2
	}
	day, err := time.Parse(time.DateOnly, *start)
	if err != nil {
		fmt.Fprintf(stderr, "jitai simulate: --start %q: use a date such as 2026-03-02\n", *start)
		return 2
	}
	cohort := simulate.DefaultCohort()
	if *cohortFile != "" {
		if cohort, err = simulate.LoadCohort(*cohortFile); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		fmt.Fprintf(stderr, "jitai simulate: loading the intervention catalogue: %v\n", err)
		return 1
	}
	study, err := policies.LoadStudy(ctx, filepath.Clean(*studyDir), cat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "jitai simulate: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "jitai simulate: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	// Collecting less often trades memory (modest here: the records go to
	// a spill file in the report folder) for CPU.
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "jitai simulate: creating the report folder: %v\n", err)
		return 1
	}

	opts := simulate.Options{Study: study, Cohort: cohort, Participants: *n, Days: *days, Seed: *seed, Start: day, Workers: *workers, SpillDir: *out}
	bar := newProgressBar(stderr)
	if bar != nil {
		opts.Progress = bar.update
	}
	run, err := simulate.Simulate(ctx, opts)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "jitai simulate: %v\n", err)
		return 1
	}
	defer run.Close()
	participants, err := run.Store.Participants(ctx, study.Config.ID)
	if err != nil {
		fmt.Fprintf(stderr, "jitai simulate: %v\n", err)
		return 1
	}
	report := simulate.Build(run, participants)
	if err := simulate.Write(ctx, *out, run, report); err != nil {
		fmt.Fprintf(stderr, "jitai simulate: %v\n", err)
		return 1
	}
	if err := simulate.Summary(stdout, report); err != nil {
		return 1
	}
	fmt.Fprintf(stderr, "simulated %d decisions in %s (%.0f decisions/s); report in %s\n",
		report.Totals.Decisions, run.Wall.Round(time.Millisecond), float64(report.Totals.Decisions)/run.Wall.Seconds(), filepath.Join(*out, "report.html"))
	for _, c := range report.Checks {
		if !c.OK {
			return 1
		}
	}
	return 0
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
