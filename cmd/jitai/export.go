package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jitai/jitai/engine/sqlite"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// runExport implements `jitai export --study S --format csv|parquet --out FILE`.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	study := fs.String("study", "", "id of the study to export (required)")
	format := fs.String("format", "", "csv | parquet (default: from the extension of --out, else csv)")
	out := fs.String("out", "", "file of the decisions table (required); the participants table goes to FILE less its extension + _participants.<format>, the codebook to FILE.codebook.md and FILE.codebook.json")
	data := fs.String("data", "", "folder of the embedded store, as for serve (default data; env JITAI_DATA)")
	studies := fs.String("studies", "", "folder of study folders, as for serve (default policies/examples; env JITAI_STUDIES)")
	file := fs.String("config", "", "YAML configuration file of serve, for its data and studies keys (env JITAI_CONFIG)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jitai export --study S --out FILE [--format csv|parquet] [--data DIR] [--studies DIR] [--config FILE]")
		fmt.Fprintln(stderr, "\nWrites the study's decisions (one row per participant and decision point), participants and codebook.")
		fmt.Fprintln(stderr, "The store must not be in use: stop `jitai serve` on the same data folder first, or use")
		fmt.Fprintln(stderr, "GET /v1/studies/{study}/export on the running server.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitai export: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *study == "" || *out == "" {
		fmt.Fprintln(stderr, "jitai export: --study and --out are required (e.g. --study stress-mrt --out stress.csv)")
		return 2
	}
	f, err := exportFormat(*format, *out)
	if err != nil {
		fmt.Fprintf(stderr, "jitai export: --format: %v\n", err)
		return 2
	}
	cfg, err := exportConfig(*file, *data, *studies, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "jitai export: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	paths, ts, err := exportStudy(ctx, cfg, *study, f, *out)
	if err != nil {
		fmt.Fprintf(stderr, "jitai export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Decisions, len(ts.Decisions.Rows), len(ts.Decisions.Columns))
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Participants, len(ts.Participants.Rows), len(ts.Participants.Columns))
	fmt.Fprintf(stdout, "%s\n%s\n", paths.CodebookMD, paths.CodebookJSON)
	return 0
}

// exportFormat is the --format, or the one the extension of out names.
func exportFormat(flagValue, out string) (export.Format, error) {
	if flagValue != "" {
		return export.ParseFormat(flagValue)
	}
	if strings.EqualFold(filepath.Ext(out), ".parquet") {
		return export.Parquet, nil
	}
	return export.CSV, nil
}

// exportConfig reads the data and studies folders as serve does: flags,
// then JITAI_* environment variables, then the YAML file, then defaults.
func exportConfig(file, data, studies string, env func(string) string) (*Config, error) {
	if file == "" {
		file = env("JITAI_CONFIG")
	}
	var c Config
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		if err := c.loadFile(file, raw); err != nil {
			return nil, err
		}
	}
	for _, kv := range []struct {
		dst        *string
		flag, name string
	}{{&c.Data, data, "JITAI_DATA"}, {&c.Studies, studies, "JITAI_STUDIES"}, {&c.Durability, "", "JITAI_DURABILITY"}} {
		switch {
		case kv.flag != "":
			*kv.dst = kv.flag
		case env(kv.name) != "":
			*kv.dst = env(kv.name)
		}
	}
	c.SetDefaults()
	if c.Durability != sqlite.DurabilityProcess && c.Durability != sqlite.DurabilityPower {
		return nil, fmt.Errorf("durability %q: want process or power", c.Durability)
	}
	return &c, nil
}

// exportStudy loads the study, opens the store, builds the tables and
// writes the files.
func exportStudy(ctx context.Context, cfg *Config, studyID string, f export.Format, out string) (export.Paths, *export.Tables, error) {
	cat, err := interventions.Embedded()
	if err != nil {
		return export.Paths{}, nil, fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	all, err := policies.LoadStudies(ctx, cfg.Studies, cat)
	if err != nil {
		return export.Paths{}, nil, err
	}
	var study *policies.Study
	var ids []string
	for _, s := range all {
		ids = append(ids, s.Config.ID)
		if s.Config.ID == studyID {
			study = s
		}
	}
	if study == nil {
		return export.Paths{}, nil, fmt.Errorf("no study %q in %s (studies: %s)", studyID, cfg.Studies, strings.Join(ids, ", "))
	}
	if dir := filepath.Dir(out); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return export.Paths{}, nil, fmt.Errorf("--out %s: folder %s does not exist", out, dir)
		}
	}
	dbPath := filepath.Join(cfg.Data, "jitai.db")
	if _, err := os.Stat(dbPath); err != nil {
		return export.Paths{}, nil, fmt.Errorf("no store at %s: give the data folder that `jitai serve` uses with --data (%w)", dbPath, err)
	}
	// Read-only: an export runs beside a live server and sees every
	// decision committed before it started.
	store, err := sqlite.OpenReadOnly(dbPath, nil)
	if err != nil {
		return export.Paths{}, nil, fmt.Errorf("opening the embedded store: %w", err)
	}
	ts, err := export.Build(ctx, store, study, export.Options{})
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the store: %w", cerr)
	}
	if err != nil {
		return export.Paths{}, nil, err
	}
	paths, err := export.WriteFiles(ts, f, out)
	if err != nil {
		return paths, nil, err
	}
	return paths, ts, nil
}
