// Command jitai-load drives a running jitai server (or several) with
// decision requests and reports decisions per second, errors by status and
// latency percentiles.
//
//	jitai-load --url http://127.0.0.1:8080 --study stress-mrt --participants 1000 \
//	    --concurrency 16 --duration 20s --enrol [--json]
//
// It enrols the participants first with --enrol (idempotent), then has
// --concurrency workers send decision requests over keep-alive connections:
// each for a random participant at the server's now (within its
// --max-clock-skew), each with its own Idempotency-Key. With --start
// DAY|tomorrow the times are spread over --days days of the participants'
// day instead, around the study's scheduled points, so that available,
// capped and quiet-hours decisions all arise: that needs a server run with
// --max-clock-skew off. Every request asks for --decision-point, by default
// the study's first app-requested point (kind: app): a scheduled point has
// one decision a day, at its instant.
// --url may be repeated (or comma-separated) to spread the load over
// several engines. The exit status is 1 if the run could not start, 3 if
// no request was answered 200, else 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitai/jitai/cmd/jitai-load/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type urlList []string

// String returns the URLs comma-separated.
func (u *urlList) String() string { return strings.Join(*u, ",") }

// Set adds the comma-separated URLs of v.
func (u *urlList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*u = append(*u, s)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jitai-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var urls urlList
	fs.Var(&urls, "url", "base URL of a jitai server (repeat or comma-separate for several; default http://127.0.0.1:8080)")
	study := fs.String("study", "stress-mrt", "study id")
	point := fs.String("decision-point", "", "decision point every request asks for (default: the study's first app-requested point, kind app)")
	participants := fs.Int("participants", 100, "number of participants the load spreads over")
	prefix := fs.String("prefix", "load-", "participant id prefix")
	concurrency := fs.Int("concurrency", 16, "concurrent workers (each has one request in flight)")
	duration := fs.Duration("duration", 0, "how long to send decision requests (e.g. 20s)")
	requests := fs.Int64("requests", 0, "how many decision requests to send")
	enrol := fs.Bool("enrol", false, "enrol the participants first (idempotent)")
	days := fs.Int("days", 7, "number of participant-local days the decision times spread over")
	start := fs.String("start", "", "spread the decision times over --days days from this day (YYYY-MM-DD or tomorrow, study time zone); the server must run with --max-clock-skew off and the day must not be before the enrolments (default: every time is the server's now)")
	seed := fs.Uint64("seed", 0, "seed of the request sequence (0: random)")
	timeout := fs.Duration("timeout", 15*time.Second, "time limit of one request")
	asJSON := fs.Bool("json", false, "print the result as JSON (same as --format json)")
	format := fs.String("format", "table", "table | json | line (one summary line)")
	label := fs.String("label", "", "label printed with the result")
	summary := fs.String("summary", "", "also append the one-line summary to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitai-load: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *asJSON {
		*format = "json"
	}
	if *format != "table" && *format != "json" && *format != "line" {
		fmt.Fprintf(stderr, "jitai-load: --format %q: want table, json or line\n", *format)
		return 2
	}
	if len(urls) == 0 {
		urls = urlList{"http://127.0.0.1:8080"}
	}
	if *duration <= 0 && *requests <= 0 {
		fmt.Fprintln(stderr, "jitai-load: give --duration or --requests")
		return 2
	}
	var day time.Time
	if *start != "" && *start != "tomorrow" {
		var err error
		if day, err = time.Parse(time.DateOnly, *start); err != nil {
			fmt.Fprintf(stderr, "jitai-load: --start %q: want YYYY-MM-DD or tomorrow\n", *start)
			return 2
		}
	}
	res, err := load.Run(ctx, load.Config{
		URLs: urls, Study: *study, DecisionPoint: *point, Participants: *participants, ParticipantPrefix: *prefix,
		Concurrency: *concurrency, Duration: *duration, Requests: *requests, Enrol: *enrol,
		Days: *days, Start: day, StartTomorrow: *start == "tomorrow", Seed: *seed, Timeout: *timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "jitai-load: %v\n", err)
		return 1
	}
	res.Label = *label
	switch *format {
	case "json":
		b, err := json.Marshal(res)
		if err != nil {
			fmt.Fprintf(stderr, "jitai-load: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, string(b))
	case "line":
		fmt.Fprintln(stdout, res.Line())
	default:
		if *label != "" {
			fmt.Fprintf(stdout, "== %s\n", *label)
		}
		res.Table(stdout)
	}
	if *summary != "" {
		f, err := os.OpenFile(*summary, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = fmt.Fprintln(f, res.Line())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "jitai-load: --summary: %v\n", err)
			return 1
		}
	}
	if res.OK == 0 {
		return 3
	}
	return 0
}
