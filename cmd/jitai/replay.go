package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Exit codes of jitai replay (docs/replay.md).
const (
	replayOK           = 0 // replayed; without --policy every decision reproduced
	replayDiffers      = 1 // a decision replayed with its own revision differs from its log: a bug
	replayUsage        = 2 // bad flags, unreadable decisions, a study that does not load, a server error
	replayNotCheckable = 3 // some decisions were made with another revision and could not be checked
)

// replayReport is what jitai replay found (the JSON of --format json).
type replayReport struct {
	Study    string `json:"study"`
	Mode     string `json:"mode"` // reproduce | compare
	Revision string `json:"revision"`
	// Catalogue is the catalogue revision of the loaded study.
	Catalogue   string `json:"catalogue_revision"`
	NewRevision string `json:"new_revision,omitempty"`
	Decisions   int    `json:"decisions"`
	// OtherStudy counts records of other studies (skipped).
	OtherStudy int `json:"other_study,omitempty"`
	// NotCheckable counts, by "policy revision / catalogue revision", the
	// decisions made with a revision other than --study-dir's: they cannot be
	// reproduced with it.
	NotCheckable map[string]int `json:"not_checkable,omitempty"`
	// Anonymised counts records kept anonymised after their participant's
	// erasure: their input is gone, so they are not replayed.
	Anonymised int `json:"anonymised,omitempty"`
	// Missed counts scheduled points the engine missed (engine_unavailable):
	// no policy was evaluated for them, so there is nothing to replay.
	Missed int `json:"missed,omitempty"`
	// Reproduced counts the decisions replayed with their own revision
	// that came out exactly as logged; Differ lists those that did not.
	Reproduced int          `json:"reproduced"`
	Differ     []replayCase `json:"differ"`
	// Compare mode (--policy): what the new version changes. Changed counts
	// the decisions whose action, reasons or option change (Changes counts
	// each kind); Cosmetic those that differ only in fields the participant
	// never sees (probabilities, candidates, tailoring values).
	Changed       int                   `json:"changed,omitempty"`
	Changes       map[string]int        `json:"changes,omitempty"`
	Cosmetic      int                   `json:"cosmetic,omitempty"`
	Transitions   []transition          `json:"transitions,omitempty"`
	ChangedFields map[string]int        `json:"changed_fields,omitempty"`
	RuleValues    map[string]int        `json:"changed_rule_values,omitempty"`
	RuleSources   []policies.RuleChange `json:"changed_rule_sources,omitempty"`
	Examples      []replayCase          `json:"examples,omitempty"`
	// Warnings say what else than the policy differs in --policy's study.
	Warnings []string `json:"warnings,omitempty"`
	// Notes counts the approximations replay made (docs/replay.md).
	Notes         map[string]int `json:"notes,omitempty"`
	Seconds       float64        `json:"seconds"`
	PerSecond     float64        `json:"decisions_per_second"`
	examplesLimit int
}

// transition counts decisions by (logged action, replayed action).
type transition struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Count   int    `json:"decisions"`
	Changed int    `json:"changed"`
}

// replayCase is one decision that differs.
type replayCase struct {
	Where       string                `json:"where"`
	DecisionID  string                `json:"decision_id"`
	Participant string                `json:"participant_id"`
	Time        time.Time             `json:"time"`
	LocalTime   string                `json:"local_time"`
	OldAction   string                `json:"old_action"`
	NewAction   string                `json:"new_action"`
	OldReasons  []string              `json:"old_reasons"`
	NewReasons  []string              `json:"new_reasons"`
	Differences []decision.Difference `json:"differences"`
	Rules       []string              `json:"changed_rules,omitempty"`
}

// replayParams are the flags of `jitai replay`.
type replayParams struct {
	studyDir  string
	decisions string
	server    string
	token     string
	policyDir string
	as        bool
	format    string
	examples  int
}

const replayLong = `Re-evaluate logged decisions. Without --policy, with the policy revision each
was made with: every decision must come out exactly as logged, and any
difference is a bug. With --policy, with a new policy: reports what would
change (actions, reasons, rules). Draws are reproduced from their keys. See
docs/replay.md.

Exit status: 0 replayed (and, without --policy, all reproduced); 1 a decision
replayed with its own revision differs from its log; 2 usage or input error
(also unreadable decisions, a study that does not load, a server error); 3
some decisions were made with another revision than --study-dir's and could
not be checked.`

// newReplayCmd is `jitai replay`.
func newReplayCmd() *cobra.Command {
	var p replayParams
	cmd := &cobra.Command{
		Use:   "replay --study-dir DIR (--decisions FILE | --from-server URL)",
		Short: "Re-evaluate logged decisions: check they reproduce, or what a new policy would change",
		Long:  replayLong,
		Example: `  jitai replay --study-dir policies/examples/stress-mrt --decisions decisions.jsonl
  jitai replay --study-dir policies/examples/stress-mrt --decisions decisions.jsonl --policy ../stress-mrt-v2`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exitWith(runReplay(cmd.Context(), p, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.studyDir, "study-dir", "", "study folder the decisions were made with (study.yaml and policy/*.rego) (required)")
	f.StringVar(&p.decisions, "decisions", "", "JSONL file of decision records, one per line (- for stdin)")
	f.StringVar(&p.server, "from-server", "", "base URL of a jitai server to read the study's decisions from (GET /v1/studies/{study}/decisions)")
	f.StringVar(&p.token, "token", "", "analyst token for --from-server (env JITAI_TOKEN)")
	f.StringVar(&p.policyDir, "policy", "", "study folder with the new version (policy and study.yaml) to compare with (omit to check that the log reproduces)")
	f.BoolVar(&p.as, "as", false, "allow --policy's study to have another id than the decisions' study (a copy under a new id)")
	f.StringVar(&p.format, "format", "text", "text | json")
	f.IntVar(&p.examples, "examples", 10, "how many changed decisions to show as examples")
	return cmd
}

// runReplay replays and reports; it returns the exit status (replayOK...).
func runReplay(ctx context.Context, p replayParams, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "jitai replay: "+format+"\n", args...)
		return replayUsage
	}
	if p.studyDir == "" || (p.decisions == "") == (p.server == "") {
		return usage("give --study-dir DIR and one of --decisions FILE or --from-server URL")
	}
	if p.format != "text" && p.format != "json" {
		return usage("--format %q: want text or json", p.format)
	}
	if p.examples < 0 {
		return usage("--examples must be 0 or more")
	}
	if p.token == "" {
		p.token = os.Getenv("JITAI_TOKEN")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	src := decisionSource{file: p.decisions, server: p.server, token: p.token, stdin: stdin}
	rep, err := replay(ctx, p, src)
	if err != nil {
		return usage("%v", err)
	}
	fmt.Fprintf(stderr, "jitai replay: %d decisions in %.2fs (%.0f decisions/s)\n", rep.Decisions, rep.Seconds, rep.PerSecond)
	if p.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		writeReplay(stdout, rep)
	}
	switch {
	case len(rep.Differ) > 0:
		return replayDiffers
	case len(rep.NotCheckable) > 0 && rep.Mode == "reproduce":
		return replayNotCheckable
	}
	return replayOK
}

// replay replays every decision of the source and builds the report.
func replay(ctx context.Context, p replayParams, src decisionSource) (*replayReport, error) {
	studyDir, newDir := p.studyDir, p.policyDir
	study, err := loadStudyFolder(ctx, "--study-dir", studyDir)
	if err != nil {
		return nil, err
	}
	rt, err := decision.NewRuntime(study)
	if err != nil {
		return nil, err
	}
	rep := &replayReport{Study: study.Config.ID, Mode: "reproduce", Revision: study.Revision, Catalogue: study.Catalogue.Revision(),
		Differ: []replayCase{}, examplesLimit: p.examples}
	var cmp *decision.Candidate
	if newDir != "" {
		ns, err := loadStudyFolder(ctx, "--policy", newDir)
		if err != nil {
			return nil, err
		}
		if ns.Config.ID != study.Config.ID && !p.as {
			return nil, fmt.Errorf("--policy %s is study %q, --study-dir %s is study %q: compare two versions of the same study, or give --as to compare with a study under another id", newDir, ns.Config.ID, studyDir, study.Config.ID)
		}
		nrt, err := decision.NewRuntime(ns)
		if err != nil {
			return nil, err
		}
		if cmp, err = decision.NewCandidate(ctx, rt, nrt); err != nil {
			return nil, err
		}
		rep.Warnings = append(rep.Warnings, settingChanges(study, ns)...)
		rep.Mode, rep.NewRevision = "compare", ns.Revision
		if ns.Config.Seed != study.Config.Seed {
			rep.Warnings = append(rep.Warnings, "--policy's study.yaml has another seed: every draw changes")
		}
		if !sameValue(ns.Config.Factors, study.Config.Factors) {
			rep.Warnings = append(rep.Warnings, "--policy's study.yaml declares other factors (levels, probabilities, bounds or sources): randomisation changes beyond the policy")
		}
		rep.RuleSources = policies.ChangedRules(study.Policy, ns.Policy)
		rep.ChangedFields, rep.RuleValues, rep.Changes = map[string]int{}, map[string]int{}, map[string]int{}
	}
	trans := map[[2]string]*transition{}
	start := time.Now()
	// Records are replayed in parallel, a batch at a time, and the results
	// added to the report in the source's order.
	var batch []*replayItem
	var otherStudy string
	flush := func() error {
		replayBatch(ctx, rt, cmp, batch, study.Revision, study.Catalogue.Revision())
		for _, it := range batch {
			if err := rep.add(it, trans); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err = src.each(ctx, study.Config.ID, func(where string, rec *trial.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if rec.Study != study.Config.ID {
			if rep.OtherStudy == 0 {
				otherStudy = rec.Study
			}
			rep.OtherStudy++
			return nil
		}
		batch = append(batch, &replayItem{where: where, rec: rec})
		if len(batch) == replayBatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	switch {
	case rep.Decisions == 0 && rep.OtherStudy > 0:
		return nil, fmt.Errorf("none of the %d decisions read is of study %s (the first is of study %s): give that study's folder with --study-dir", rep.OtherStudy, study.Config.ID, otherStudy)
	case rep.Decisions == 0:
		return nil, errors.New("no decisions to replay: the log is empty")
	}
	rep.Seconds = time.Since(start).Seconds()
	if rep.Seconds > 0 {
		rep.PerSecond = float64(rep.Decisions) / rep.Seconds
	}
	for _, t := range trans {
		rep.Transitions = append(rep.Transitions, *t)
	}
	sort.Slice(rep.Transitions, func(i, j int) bool {
		a, b := rep.Transitions[i], rep.Transitions[j]
		if a.From != b.From {
			return a.From < b.From
		}
		return a.To < b.To
	})
	return rep, nil
}

// replayBatchSize is how many records are replayed in parallel at a time.
const replayBatchSize = 512

// replayItem is one record and what replaying it gave.
type replayItem struct {
	where      string
	rec        *trial.Record
	altered    bool // the input does not match its hash
	anonymised bool // kept anonymised after an erasure: no input to replay
	missed     bool // a scheduled point the engine missed: nothing was evaluated
	own        bool // made with --study-dir's revision: replayed with it
	res        *decision.ReplayResult
	cmp        *decision.Outcome
	err        error
}

// replayBatch replays the items on every CPU. Replay is pure: the
// runtimes, their prepared queries and draw keyers are safe for concurrent
// use.
func replayBatch(ctx context.Context, rt *decision.Runtime, cmp *decision.Candidate, items []*replayItem, revision, catalogue string) {
	work := make(chan *replayItem)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				rec := it.rec
				if decision.Anonymised(rec) {
					it.anonymised = true
					continue
				}
				if decision.IsMissed(rec) {
					it.missed = true
					continue
				}
				it.own = rec.PolicyRevision == revision && rec.CatalogueRevision == catalogue
				if it.own {
					it.res, it.err = decision.Replay(ctx, rt, rec)
				} else if cmp == nil {
					_, it.err = decision.DecodeInput(rec) // not replayed: check it is intact
				}
				with := ""
				if cmp != nil && it.err == nil {
					it.cmp, it.err = cmp.Evaluate(ctx, rec)
					with = ", with --policy"
				}
				switch {
				case errors.Is(it.err, decision.ErrInputHash):
					it.altered, it.err = true, nil
				case it.err != nil:
					it.err = fmt.Errorf("%s: decision %s%s: %w", it.where, rec.ID, with, it.err)
				}
			}
		}()
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
}

// add counts one replayed record into the report.
func (rep *replayReport) add(it *replayItem, trans map[[2]string]*transition) error {
	if it.err != nil {
		return it.err
	}
	rec := it.rec
	rep.Decisions++
	if it.anonymised {
		rep.Anonymised++
		return nil
	}
	if it.missed {
		rep.Missed++
		return nil
	}
	if it.altered {
		rep.Differ = append(rep.Differ, replayCase{Where: it.where, DecisionID: rec.ID, Participant: rec.Participant, Time: rec.Time,
			LocalTime: rec.LocalTime, OldAction: rec.Action, OldReasons: nonNilStrings(rec.Reasons), NewReasons: []string{},
			Differences: []decision.Difference{{Field: "input_hash", Old: rec.InputHash, New: "not the hash of the logged input: the record was altered"}}})
		return nil
	}
	if it.own {
		rep.note(it.res.Notes)
		if len(it.res.Differences) == 0 {
			rep.Reproduced++
		} else {
			rep.Differ = append(rep.Differ, newCase(it.where, it.res))
		}
	} else {
		if rep.NotCheckable == nil {
			rep.NotCheckable = map[string]int{}
		}
		rep.NotCheckable[rec.PolicyRevision+" / "+rec.CatalogueRevision]++
	}
	if it.cmp == nil {
		return nil
	}
	res := it.cmp.ReplayResult
	rep.note(res.Notes)
	key := [2]string{rec.Action, res.Replayed.Action}
	tr := trans[key]
	if tr == nil {
		tr = &transition{From: key[0], To: key[1]}
		trans[key] = tr
	}
	tr.Count++
	if len(it.cmp.Changes) == 0 {
		if len(res.Differences) > 0 {
			rep.Cosmetic++
		}
		return nil
	}
	tr.Changed++
	rep.Changed++
	for _, c := range it.cmp.Changes {
		rep.Changes[c]++
	}
	for _, d := range res.Differences {
		rep.ChangedFields[fieldGroup(d.Field)]++
	}
	for _, r := range it.cmp.Rules {
		rep.RuleValues[r]++
	}
	if len(rep.Examples) < rep.examplesLimit {
		c := newCase(it.where, res)
		c.Rules = it.cmp.Rules
		rep.Examples = append(rep.Examples, c)
	}
	return nil
}

func (rep *replayReport) note(notes []string) {
	for _, n := range notes {
		if rep.Notes == nil {
			rep.Notes = map[string]int{}
		}
		rep.Notes[n]++
	}
}

// fieldGroup is a difference's field without the factor's sub-field
// (factors.prompt.draw -> factors.prompt).
func fieldGroup(f string) string {
	if strings.HasPrefix(f, "factors.") {
		parts := strings.SplitN(f, ".", 3)
		return parts[0] + "." + parts[1]
	}
	return f
}

func newCase(where string, res *decision.ReplayResult) replayCase {
	l, r := res.Logged, res.Replayed
	return replayCase{Where: where, DecisionID: l.ID, Participant: l.Participant, Time: l.Time, LocalTime: l.LocalTime,
		OldAction: l.Action, NewAction: r.Action, OldReasons: nonNilStrings(l.Reasons), NewReasons: nonNilStrings(r.Reasons),
		Differences: res.Differences}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// settingChanges says which study.yaml settings of the policy input the new
// version changes: the replay applies them.
func settingChanges(old, cur *policies.Study) []string {
	var out []string
	if old.Config.ID != cur.Config.ID {
		out = append(out, fmt.Sprintf("--policy's study is %q, the decisions' %q (--as): input.study.id changes", cur.Config.ID, old.Config.ID))
	}
	if !sameValue(old.Config.Burden, cur.Config.Burden) {
		out = append(out, "--policy's study.yaml changes the burden caps: the replay applies them to the logged history counts")
	}
	if !sameValue(old.Config.QuietHours, cur.Config.QuietHours) {
		out = append(out, "--policy's study.yaml changes the quiet hours: the replay gives the policy the new ones (input.study.quiet_hours)")
	}
	return out
}

func sameValue(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// writeReplay writes the report as text for the designer.
func writeReplay(w io.Writer, rep *replayReport) {
	fmt.Fprintf(w, "study %s: %d decisions replayed", rep.Study, rep.Decisions)
	if rep.OtherStudy > 0 {
		fmt.Fprintf(w, " (%d records of other studies skipped)", rep.OtherStudy)
	}
	fmt.Fprintln(w)
	checked := rep.Reproduced + len(rep.Differ)
	fmt.Fprintf(w, "with their own policy revision %s: %d of %d reproduced exactly, %d differ\n", short(rep.Revision), rep.Reproduced, checked, len(rep.Differ))
	if rep.Anonymised > 0 {
		fmt.Fprintf(w, "%d decisions not replayed: kept anonymised after their participant's erasure, their input is gone\n", rep.Anonymised)
	}
	if rep.Missed > 0 {
		fmt.Fprintf(w, "%d scheduled points not replayed: the engine missed them (engine_unavailable), no policy was evaluated\n", rep.Missed)
	}
	if len(rep.NotCheckable) > 0 {
		fmt.Fprintln(w, "\nNOT CHECKED: made with another policy or catalogue revision than --study's")
		fmt.Fprintf(w, "(--study has policy %s, catalogue %s); give that revision's study folder to check them:\n", short(rep.Revision), short(rep.Catalogue))
		for _, k := range slices.Sorted(maps.Keys(rep.NotCheckable)) {
			p, c, _ := strings.Cut(k, " / ")
			fmt.Fprintf(w, "  policy %s, catalogue %s: %d decisions\n", short(p), short(c), rep.NotCheckable[k])
		}
	}
	if len(rep.Differ) > 0 {
		fmt.Fprintln(w, "\nDIFFERENCES: these decisions replayed with their own revision do not come out as logged.")
		fmt.Fprintln(w, "The policy is pure and the draws are keyed, so this is a bug (or the log was altered): report it.")
		for _, c := range rep.Differ {
			fmt.Fprintf(w, "  %s: decision %s (participant %s, %s):\n", c.Where, c.DecisionID, c.Participant, c.LocalTime)
			for _, d := range c.Differences {
				fmt.Fprintf(w, "    %s\n", d)
			}
		}
	}
	if rep.Mode == "compare" {
		pct := 0.0
		if rep.Decisions > 0 {
			pct = 100 * float64(rep.Changed) / float64(rep.Decisions)
		}
		fmt.Fprintf(w, "\nwith the new version %s: %d of %d decisions change (%.1f%%): action, reasons or option\n", short(rep.NewRevision), rep.Changed, rep.Decisions, pct)
		for _, k := range slices.Sorted(maps.Keys(rep.Changes)) {
			fmt.Fprintf(w, "  %-10s %d\n", k, rep.Changes[k])
		}
		if rep.Cosmetic > 0 {
			fmt.Fprintf(w, "%d more decisions differ only in fields the participant never sees (probabilities, candidates, tailoring values): not counted\n", rep.Cosmetic)
		}
		for _, warning := range rep.Warnings {
			fmt.Fprintf(w, "WARNING: %s\n", warning)
		}
		fmt.Fprintln(w, "\nactions (logged -> replayed):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  logged\treplayed\tdecisions\tchanged\t")
		for _, t := range rep.Transitions {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t\n", t.From, t.To, t.Count, t.Changed)
		}
		_ = tw.Flush()
		if len(rep.RuleSources) > 0 {
			fmt.Fprintln(w, "\nrules whose source changed:")
			for _, r := range rep.RuleSources {
				fmt.Fprintf(w, "  %s: %s (%s:%d)\n", r.Rule, r.Change, r.File, r.Line)
			}
		}
		if len(rep.RuleValues) > 0 {
			fmt.Fprintln(w, "\nrules whose value changed (decisions):")
			for _, k := range sortedByCount(rep.RuleValues) {
				fmt.Fprintf(w, "  %-28s %d\n", k, rep.RuleValues[k])
			}
		}
		if len(rep.ChangedFields) > 0 {
			fmt.Fprintln(w, "\nfields of the decision that changed (decisions):")
			for _, k := range sortedByCount(rep.ChangedFields) {
				fmt.Fprintf(w, "  %-28s %d\n", k, rep.ChangedFields[k])
			}
		}
		if len(rep.Examples) > 0 {
			fmt.Fprintf(w, "\nexamples (first %d):\n", len(rep.Examples))
			for _, c := range rep.Examples {
				fmt.Fprintf(w, "  %s  participant %s  %s local\n", c.DecisionID, c.Participant, c.LocalTime)
				fmt.Fprintf(w, "    logged:   %s%s\n", c.OldAction, reasonList(c.OldReasons))
				fmt.Fprintf(w, "    replayed: %s%s\n", c.NewAction, reasonList(c.NewReasons))
				if len(c.Rules) > 0 {
					fmt.Fprintf(w, "    rules changed: %s\n", strings.Join(c.Rules, ", "))
				}
			}
		}
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\napproximations (docs/replay.md):")
		for _, k := range slices.Sorted(maps.Keys(rep.Notes)) {
			fmt.Fprintf(w, "  %d x %s\n", rep.Notes[k], k)
		}
	}
}

func reasonList(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return " (" + strings.Join(r, ", ") + ")"
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func sortedByCount(m map[string]int) []string {
	keys := slices.Sorted(maps.Keys(m))
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}
