package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/experiments/export"
)

// exportParams are the flags of `jitai export`.
type exportParams struct {
	study, format, out string
	settings           exportSettings
	group, consumer    string
	batch              int
	reindex            bool
	// redis are the options of the Redis store.
	redis redisstore.Options
	// afterBatch is deps.afterBatch.
	afterBatch func(batch int) error
}

const exportLong = `With csv or parquet, writes the study's decisions (one row per participant and
decision point), participants, engagement (one row per delivered decision) and
codebook (with R read.csv and pandas read_csv code for the CSV files), from the embedded store (read-only:
it may run beside jitai serve, or use GET /v1/studies/{study}/export on the
running server) or from the Redis store.

With jsonl (Redis store only), appends the decisions committed since the last
run, one JSON record per line, read from the study's decision log through
consumer group --group: it writes and fsyncs them, then acknowledges them, then
trims from the log what every group has acknowledged. A run that dies before
acknowledging gets the same decisions again next time, and skips those already
at the end of the file: at-least-once from Redis, exactly once in the file. Run
one export per file at a time.`

// newExportCmd is `jitai export --study ID --out FILE [--format csv|parquet|jsonl]`.
func newExportCmd(d deps) *cobra.Command {
	p := exportParams{redis: d.redis, afterBatch: d.afterBatch}
	cmd := &cobra.Command{
		Use:   "export --study ID --out FILE",
		Short: "Analysis-ready export (CSV or Parquet, with a codebook) or the decision log as JSONL (Redis)",
		Long:  exportLong,
		Example: `  jitai export --study stress-mrt --format csv --out stress.csv
  jitai export --study stress-mrt --out log.jsonl --store redis --redis-url redis://127.0.0.1:6379/0`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExport(cmd.Context(), p, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.study, "study", "", "id of the study to export (required)")
	f.StringVar(&p.format, "format", "", "csv | parquet | jsonl (default: from the extension of --out, else csv); jsonl needs the Redis store")
	f.StringVar(&p.out, "out", "", "file of the decisions table (required); the participants table goes to FILE less its extension + _participants.<format>, the engagement table to FILE less its extension + _engagement.<format>, the codebook to FILE.codebook.md and FILE.codebook.json; with jsonl, the file new decisions are appended to")
	f.StringVar(&p.settings.data, "data", "", "data folder of the embedded store, as for serve (default data; env JITAI_DATA)")
	f.StringVar(&p.settings.studies, "studies", "", "folder of study folders, as for serve (default policies/examples; env JITAI_STUDIES)")
	f.StringVar(&p.settings.file, "config", "", "YAML configuration file of serve, for its data, studies, store and redis_url keys (env JITAI_CONFIG)")
	f.StringVar(&p.settings.store, "store", "", "embedded | redis, as for serve (default embedded, or redis when a Redis URL is set; env JITAI_STORE)")
	f.StringVar(&p.settings.redisURL, "redis-url", "", "Redis URL of the Redis store, as for serve (env JITAI_REDIS_URL)")
	f.StringVar(&p.group, "group", "export", "jsonl: consumer group of the decision log; each group gets every decision once")
	f.StringVar(&p.consumer, "consumer", "jitai-export", "jsonl: consumer name within the group; keep it the same from run to run, so that what a run did not acknowledge is delivered again to the next")
	f.IntVar(&p.batch, "batch", 1000, "jsonl: decisions per write, fsync and acknowledgement")
	f.BoolVar(&p.reindex, "reindex", false, "jsonl: first rebuild the study-wide index and append decisions missing from the log (after an engine crash on Redis Cluster, or an error that names Reindex)")
	return cmd
}

// runExport checks the flags, then exports.
func runExport(ctx context.Context, p exportParams, stdout, stderr io.Writer) error {
	if p.study == "" || p.out == "" {
		return usageErrorf("--study and --out are required (e.g. --study stress-mrt --out stress.csv)")
	}
	f, err := exportFormat(p.format, p.out)
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	cfg, err := exportConfig(p.settings, os.Getenv)
	if err != nil {
		return usageErrorf("%v", err)
	}
	if f == formatJSONL && cfg.Store != "redis" {
		return usageErrorf("--format jsonl reads the decision log of the Redis store: add --store redis --redis-url URL (the embedded store exports csv or parquet)")
	}
	if p.batch < 1 {
		return usageErrorf("--batch must be at least 1")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f == formatJSONL {
		res, err := exportLog(ctx, cfg, p.redis, logExportArgs{study: p.study, out: p.out, group: p.group, consumer: p.consumer, batch: p.batch, reindex: p.reindex, afterBatch: p.afterBatch}, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d decisions appended", p.out, res.Appended)
		if res.Skipped > 0 {
			fmt.Fprintf(stdout, " (%d delivered again and already in the file)", res.Skipped)
		}
		if res.Removed+res.Anonymised > 0 {
			fmt.Fprintf(stdout, "; erasures applied to the file: %d lines removed, %d anonymised", res.Removed, res.Anonymised)
		}
		fmt.Fprintf(stdout, ", %d log entries trimmed", res.Trimmed)
		if res.Appended > 0 && res.Elapsed > 0 {
			fmt.Fprintf(stdout, ", %.0f decisions/s", float64(res.Appended)/res.Elapsed.Seconds())
		}
		fmt.Fprintln(stdout)
		return nil
	}
	paths, ts, err := exportStudy(ctx, cfg, p.redis, p.study, export.Format(f), p.out, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Decisions, len(ts.Decisions.Rows), len(ts.Decisions.Columns))
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Participants, len(ts.Participants.Rows), len(ts.Participants.Columns))
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Engagement, len(ts.Engagement.Rows), len(ts.Engagement.Columns))
	fmt.Fprintf(stdout, "%s\n%s\n", paths.CodebookMD, paths.CodebookJSON)
	return nil
}

// formatJSONL is the decision log export's format (not a table format of
// experiments/export).
const formatJSONL = "jsonl"

// exportFormat is the --format, or the one the extension of out names:
// csv, parquet or jsonl.
func exportFormat(flagValue, out string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(flagValue), formatJSONL) || flagValue == "" && strings.EqualFold(filepath.Ext(out), ".jsonl") {
		return formatJSONL, nil
	}
	if flagValue != "" {
		f, err := export.ParseFormat(flagValue)
		if err != nil {
			return "", fmt.Errorf("format %q: use csv or parquet (tables) or jsonl (the Redis decision log)", flagValue)
		}
		return string(f), nil
	}
	if strings.EqualFold(filepath.Ext(out), ".parquet") {
		return string(export.Parquet), nil
	}
	return string(export.CSV), nil
}

// exportSettings are the flags of export that serve shares.
type exportSettings struct {
	file, data, studies, store, redisURL string
}

// exportConfig reads the data and studies folders and the store as serve
// does: flags, then JITAI_* environment variables, then the YAML file, then
// defaults.
func exportConfig(in exportSettings, env func(string) string) (*Config, error) {
	c, err := readConfigFile(in.file, env)
	if err != nil {
		return nil, err
	}
	for _, kv := range []struct {
		dst        *string
		flag, name string
	}{
		{&c.Data, in.data, "JITAI_DATA"}, {&c.Studies, in.studies, "JITAI_STUDIES"}, {&c.Durability, "", "JITAI_DURABILITY"},
		{&c.Store, in.store, "JITAI_STORE"}, {&c.RedisURL, in.redisURL, "JITAI_REDIS_URL"},
	} {
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
	switch {
	case c.Store != "embedded" && c.Store != "redis":
		return nil, fmt.Errorf("store %q: want embedded (SQLite under data) or redis (with redis_url)", c.Store)
	case c.Store == "embedded" && c.RedisURL != "":
		return nil, errors.New("redis_url is set but store is embedded: add --store redis")
	}
	return &c, nil
}

// openRedisStore opens the Redis store as serve does and checks that Redis
// answers, logging warnings to stderr.
func openRedisStore(ctx context.Context, cfg *Config, opts redisstore.Options, stderr io.Writer) (*redisstore.Store, error) {
	log, err := newLogger("warn", stderr)
	if err != nil {
		return nil, err
	}
	redisstore.RouteClientLogs(log)
	st, err := redisstore.Open(ctx, cfg.RedisURL, opts, log)
	if err != nil {
		return nil, fmt.Errorf("opening the Redis store: %w", err)
	}
	if err := st.Ping(ctx); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("opening the Redis store: %w", err)
	}
	return st, nil
}

// exportStudy loads the study, opens the store, builds the tables and
// writes the files.
func exportStudy(ctx context.Context, cfg *Config, redis redisstore.Options, studyID string, f export.Format, out string, stderr io.Writer) (export.Paths, *export.Tables, error) {
	study, err := loadStudy(ctx, cfg.Studies, studyID)
	if err != nil {
		return export.Paths{}, nil, err
	}
	if err := checkOutFolder(out); err != nil {
		return export.Paths{}, nil, err
	}
	var store interface {
		export.Store
		Close() error
	}
	if cfg.Store == "redis" {
		// The Redis store is shared by design: the export reads it beside
		// the running engines.
		if store, err = openRedisStore(ctx, cfg, redis, stderr); err != nil {
			return export.Paths{}, nil, err
		}
	} else {
		// Read-only: an export runs beside a live server and sees every
		// decision committed before it started.
		if store, err = openReadOnlyStore(cfg.Data); err != nil {
			return export.Paths{}, nil, err
		}
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

// checkOutFolder checks that the folder of out exists.
func checkOutFolder(out string) error {
	if dir := filepath.Dir(out); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--out %s: folder %s does not exist", out, dir)
		}
	}
	return nil
}
