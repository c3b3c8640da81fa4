package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/sqlite"
)

// runExplain implements `jitai explain DECISION_ID`.
func runExplain(args []string, stdout, stderr io.Writer) int {
	return explainMain(args, os.Stdin, stdout, stderr)
}

func explainMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	studyDir := fs.String("study", "", "study folder (study.yaml and policy/*.rego) (required)")
	data := fs.String("data", "", "data folder of the embedded store (as for serve) to read the decision from")
	file := fs.String("decisions", "", "JSONL file of decision records to find the decision in (- for stdin)")
	server := fs.String("from-server", "", "base URL of a jitai server to read the decision from (GET /v1/studies/{study}/decisions/{id})")
	token := fs.String("token", "", "analyst token for --from-server (env JITAI_TOKEN)")
	format := fs.String("format", "text", "text | json (the JSON of GET /v1/studies/{study}/decisions/{id}/explain)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: jitai explain DECISION_ID --study DIR (--data DIR | --decisions FILE | --from-server URL [--token T]) [--format text|json]")
		fmt.Fprintln(stderr, "\nExplains one logged decision: which rules of the policy fired and the input values they read, why")
		fmt.Fprintln(stderr, "the person was unavailable, which factor levels were drawn with what probability, which option was")
		fmt.Fprintln(stderr, "chosen among which candidates. Exit status: 0 explained; 1 the decision does not reproduce (a bug,")
		fmt.Fprintln(stderr, "shown in the explanation); 2 usage error or the decision cannot be read.\n\nflags:")
		fs.PrintDefaults()
	}
	// The decision id may come before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return 2
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "jitai explain: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	sources := 0
	for _, s := range []string{*data, *file, *server} {
		if s != "" {
			sources++
		}
	}
	if id == "" || *studyDir == "" || sources != 1 {
		fmt.Fprintln(stderr, "jitai explain: give DECISION_ID, --study DIR and one of --data DIR, --decisions FILE or --from-server URL")
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "jitai explain: --format %q: want text or json\n", *format)
		return 2
	}
	if *token == "" {
		*token = os.Getenv("JITAI_TOKEN")
	}
	ctx := context.Background()
	study, err := loadStudyFolder(ctx, "--study", *studyDir)
	if err != nil {
		fmt.Fprintf(stderr, "jitai explain: %v\n", err)
		return 2
	}
	rt, err := decision.NewRuntime(study)
	if err != nil {
		fmt.Fprintf(stderr, "jitai explain: %v\n", err)
		return 2
	}
	var rec *trial.Record
	if *data != "" {
		rec, err = decisionFromStore(ctx, *data, study.Config.ID, id)
	} else {
		rec, _, err = decisionSource{file: *file, server: *server, token: *token, stdin: stdin}.decision(ctx, study.Config.ID, id)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jitai explain: %v\n", err)
		return 2
	}
	if rec.Study != study.Config.ID {
		fmt.Fprintf(stderr, "jitai explain: decision %s is of study %s, --study %s is study %s\n", id, rec.Study, *studyDir, study.Config.ID)
		return 2
	}
	ex, err := decision.Explain(ctx, rt, rec)
	if err != nil {
		fmt.Fprintf(stderr, "jitai explain: decision %s: %v\n", id, err)
		return 2
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
	} else {
		writeExplanation(stdout, ex)
	}
	if ex.Reproduced != nil && !*ex.Reproduced {
		return 1
	}
	return 0
}

// decisionFromStore reads one decision from the embedded store, read-only.
func decisionFromStore(ctx context.Context, dataDir, study, id string) (*trial.Record, error) {
	dbPath := filepath.Join(dataDir, "jitai.db")
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("--data %s: no store at %s: give the data folder that `jitai serve` uses", dataDir, dbPath)
	}
	st, err := sqlite.OpenReadOnly(dbPath, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the embedded store: %w", err)
	}
	defer st.Close()
	rec, err := st.Decision(ctx, study, id)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, fmt.Errorf("no decision %s of study %s in %s", id, study, dbPath)
	}
	return rec, err
}

// writeExplanation writes an explanation as text: the summary, then the
// rules that fired with the input values they read.
func writeExplanation(w io.Writer, ex *decision.Explanation) {
	for _, s := range ex.Summary {
		if strings.HasPrefix(s, "Rules that fired:") {
			continue // listed in detail below
		}
		fmt.Fprintln(w, s)
	}
	if len(ex.Rules) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRules that fired (in source order), with the values they read (input and other rules):")
	for _, r := range ex.Rules {
		kind := ""
		switch {
		case r.Default:
			kind = " [default]"
		case r.Else:
			kind = " [else branch]"
		}
		fmt.Fprintf(w, "  %s:%d  %s%s", r.File, r.Line, r.Head, kind)
		switch {
		case r.ValueOmitted:
			fmt.Fprint(w, " (large value not shown)")
		case r.Value != nil && !strings.Contains(r.Head, " contains ") && !strings.Contains(r.Head, " := "):
			fmt.Fprintf(w, " = %s", jsonText(r.Value))
		}
		fmt.Fprintln(w)
		for _, in := range append(append([]decision.InputValue(nil), r.Inputs...), r.RuleValues...) {
			v := "undefined"
			switch {
			case in.Omitted:
				v = "(large value not shown)"
			case in.Defined:
				v = jsonText(in.Value)
			}
			fmt.Fprintf(w, "      %s = %s\n", in.Ref, v)
		}
	}
}

// jsonText renders a value as compact JSON, shortened for a terminal.
func jsonText(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const maxLen = 160
	if len(raw) > maxLen {
		return string(raw[:maxLen]) + "... (" + strconv.Itoa(len(raw)) + " bytes)"
	}
	return string(raw)
}
