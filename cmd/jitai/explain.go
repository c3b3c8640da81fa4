package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"
)

// explainParams are the flags of `jitai explain`.
type explainParams struct {
	studyDir  string
	data      string
	decisions string
	server    string
	token     string
	format    string
}

const explainLong = `Explain one logged decision: which rules of the policy fired and the input
values they read, why the person was unavailable, which factor levels were
drawn with what probability, which option was chosen among which candidates.

Exit status: 0 explained; 1 the decision does not reproduce (a bug, shown in
the explanation); 2 usage error or the decision cannot be read.`

// newExplainCmd is `jitai explain DECISION_ID`.
func newExplainCmd() *cobra.Command {
	var p explainParams
	cmd := &cobra.Command{
		Use:     "explain DECISION_ID --study-dir DIR (--data DIR | --decisions FILE | --from-server URL)",
		Short:   "Explain one logged decision: rules fired, values read, availability, draws, option",
		Long:    explainLong,
		Example: "  jitai explain 01J... --study-dir policies/examples/stress-mrt --data data",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give DECISION_ID (one; got %d arguments), --study-dir DIR and one of --data DIR, --decisions FILE or --from-server URL", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd.Context(), args[0], p, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.studyDir, "study-dir", "", "study folder (study.yaml and policy/*.rego) (required)")
	f.StringVar(&p.data, "data", "", "data folder of the embedded store (as for serve) to read the decision from")
	f.StringVar(&p.decisions, "decisions", "", "JSONL file of decision records to find the decision in (- for stdin)")
	f.StringVar(&p.server, "from-server", "", "base URL of a jitai server to read the decision from (GET /v1/studies/{study}/decisions/{id})")
	f.StringVar(&p.token, "token", "", "analyst token for --from-server (env JITAI_TOKEN)")
	f.StringVar(&p.format, "format", "text", "text | json (the JSON of GET /v1/studies/{study}/decisions/{id}/explain)")
	return cmd
}

// runExplain explains decision id. A decision that cannot be read is a
// usage error (exit 2), as documented.
func runExplain(ctx context.Context, id string, p explainParams, stdin io.Reader, stdout io.Writer) error {
	sources := 0
	for _, s := range []string{p.data, p.decisions, p.server} {
		if s != "" {
			sources++
		}
	}
	if p.studyDir == "" || sources != 1 {
		return usageErrorf("give DECISION_ID, --study-dir DIR and one of --data DIR, --decisions FILE or --from-server URL")
	}
	if p.format != "text" && p.format != "json" {
		return usageErrorf("--format %q: want text or json", p.format)
	}
	if p.token == "" {
		p.token = os.Getenv("JITAI_TOKEN")
	}
	study, err := loadStudyFolder(ctx, "--study-dir", p.studyDir)
	if err != nil {
		return usageErrorf("%v", err)
	}
	rt, err := decision.NewRuntime(study)
	if err != nil {
		return usageErrorf("%v", err)
	}
	var rec *trial.Record
	if p.data != "" {
		rec, err = decisionFromStore(ctx, p.data, study.Config.ID, id)
	} else {
		rec, _, err = decisionSource{file: p.decisions, server: p.server, token: p.token, stdin: stdin}.decision(ctx, study.Config.ID, id)
	}
	if err != nil {
		return usageErrorf("%v", err)
	}
	if rec.Study != study.Config.ID {
		return usageErrorf("decision %s is of study %s, --study-dir %s is study %s", id, rec.Study, p.studyDir, study.Config.ID)
	}
	ex, err := decision.Explain(ctx, rt, rec)
	if err != nil {
		return usageErrorf("decision %s: %v", id, err)
	}
	if p.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ex); err != nil {
			return err
		}
	} else {
		writeExplanation(stdout, ex)
	}
	if ex.Reproduced != nil && !*ex.Reproduced {
		return exitWith(exitFailure)
	}
	return nil
}

// decisionFromStore reads one decision from the embedded store, read-only.
func decisionFromStore(ctx context.Context, dataDir, study, id string) (*trial.Record, error) {
	st, err := openReadOnlyStore(dataDir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rec, err := st.Decision(ctx, study, id)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, fmt.Errorf("no decision %s of study %s in %s", id, study, filepath.Join(dataDir, "jitai.db"))
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
