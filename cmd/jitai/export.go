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

	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/experiments/export"
)

// runExport implements `jitai export --study S --format csv|parquet|jsonl --out FILE`.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	study := fs.String("study", "", "id of the study to export (required)")
	format := fs.String("format", "", "csv | parquet | jsonl (default: from the extension of --out, else csv); jsonl needs the Redis store")
	out := fs.String("out", "", "file of the decisions table (required); the participants table goes to FILE less its extension + _participants.<format>, the codebook to FILE.codebook.md and FILE.codebook.json; with jsonl, the file new decisions are appended to")
	data := fs.String("data", "", "folder of the embedded store, as for serve (default data; env JITAI_DATA)")
	studies := fs.String("studies", "", "folder of study folders, as for serve (default policies/examples; env JITAI_STUDIES)")
	file := fs.String("config", "", "YAML configuration file of serve, for its data, studies, store and redis_url keys (env JITAI_CONFIG)")
	store := fs.String("store", "", "embedded | redis, as for serve (default embedded, or redis when a Redis URL is set; env JITAI_STORE)")
	redisURL := fs.String("redis-url", "", "Redis URL of the Redis store, as for serve (env JITAI_REDIS_URL)")
	group := fs.String("group", "export", "jsonl: consumer group of the decision log; each group gets every decision once")
	consumer := fs.String("consumer", "jitai-export", "jsonl: consumer name within the group; keep it the same from run to run, so that what a run did not acknowledge is delivered again to the next")
	batch := fs.Int("batch", 1000, "jsonl: decisions per write, fsync and acknowledgement")
	reindex := fs.Bool("reindex", false, "jsonl: first rebuild the study-wide index and append decisions missing from the log (after an engine crash on Redis Cluster, or an error that names Reindex)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jitai export --study S --out FILE [--format csv|parquet|jsonl] [--data DIR] [--studies DIR] [--store embedded|redis] [--redis-url URL] [--config FILE]")
		fmt.Fprintln(stderr, "\nWith csv or parquet, writes the study's decisions (one row per participant and decision point),")
		fmt.Fprintln(stderr, "participants and codebook, from the embedded store (read-only: it may run beside `jitai serve`, or")
		fmt.Fprintln(stderr, "use GET /v1/studies/{study}/export on the running server) or from the Redis store.")
		fmt.Fprintln(stderr, "\nWith jsonl (Redis store only), appends the decisions committed since the last run, one JSON record")
		fmt.Fprintln(stderr, "per line, read from the study's decision log through consumer group --group: it writes and fsyncs")
		fmt.Fprintln(stderr, "them, then acknowledges them, then trims from the log what every group has acknowledged. A run that")
		fmt.Fprintln(stderr, "dies before acknowledging gets the same decisions again next time, and skips those already at the")
		fmt.Fprintln(stderr, "end of the file: at-least-once from Redis, exactly once in the file. Run one export per file at a time.\n\nflags:")
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
	cfg, err := exportConfig(exportSettings{file: *file, data: *data, studies: *studies, store: *store, redisURL: *redisURL}, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "jitai export: %v\n", err)
		return 2
	}
	if f == formatJSONL && cfg.Store != "redis" {
		fmt.Fprintln(stderr, "jitai export: --format jsonl reads the decision log of the Redis store: add --store redis --redis-url URL (the embedded store exports csv or parquet)")
		return 2
	}
	if *batch < 1 {
		fmt.Fprintln(stderr, "jitai export: --batch must be at least 1")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f == formatJSONL {
		res, err := exportLog(ctx, cfg, logExportArgs{study: *study, out: *out, group: *group, consumer: *consumer, batch: *batch, reindex: *reindex}, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "jitai export: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %d decisions appended", *out, res.Appended)
		if res.Skipped > 0 {
			fmt.Fprintf(stdout, " (%d delivered again and already in the file)", res.Skipped)
		}
		fmt.Fprintf(stdout, ", %d log entries trimmed", res.Trimmed)
		if res.Appended > 0 && res.Elapsed > 0 {
			fmt.Fprintf(stdout, ", %.0f decisions/s", float64(res.Appended)/res.Elapsed.Seconds())
		}
		fmt.Fprintln(stdout)
		return 0
	}
	paths, ts, err := exportStudy(ctx, cfg, *study, export.Format(f), *out, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "jitai export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Decisions, len(ts.Decisions.Rows), len(ts.Decisions.Columns))
	fmt.Fprintf(stdout, "%s: %d rows x %d columns\n", paths.Participants, len(ts.Participants.Rows), len(ts.Participants.Columns))
	fmt.Fprintf(stdout, "%s\n%s\n", paths.CodebookMD, paths.CodebookJSON)
	return 0
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
	file := in.file
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

// exportRedisOptions are the Redis store options of export (those of
// serve); tests set a key prefix.
var exportRedisOptions = redisstore.Options{}

// openRedisStore opens the Redis store as serve does and checks that Redis
// answers, logging warnings to stderr.
func openRedisStore(ctx context.Context, cfg *Config, stderr io.Writer) (*redisstore.Store, error) {
	log, err := newLogger("warn", stderr)
	if err != nil {
		return nil, err
	}
	redisstore.RouteClientLogs(log)
	st, err := redisstore.Open(ctx, cfg.RedisURL, exportRedisOptions, log)
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
func exportStudy(ctx context.Context, cfg *Config, studyID string, f export.Format, out string, stderr io.Writer) (export.Paths, *export.Tables, error) {
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
		if store, err = openRedisStore(ctx, cfg, stderr); err != nil {
			return export.Paths{}, nil, err
		}
	} else {
		dbPath := filepath.Join(cfg.Data, "jitai.db")
		if _, err := os.Stat(dbPath); err != nil {
			return export.Paths{}, nil, fmt.Errorf("no store at %s: give the data folder that `jitai serve` uses with --data (%w)", dbPath, err)
		}
		// Read-only: an export runs beside a live server and sees every
		// decision committed before it started.
		if store, err = sqlite.OpenReadOnly(dbPath, nil); err != nil {
			return export.Paths{}, nil, fmt.Errorf("opening the embedded store: %w", err)
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
