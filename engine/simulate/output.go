package simulate

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Write writes the report into dir (created if needed): report.html,
// report.json, participant_days.csv, factors.csv, availability.csv,
// hours.csv and decisions.jsonl (every engine.Record, one JSON document a
// line in (time, decision id) order, as GET /v1/studies/{s}/decisions/{id}
// returns them).
func Write(ctx context.Context, dir string, run *Run, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the report folder: %w", err)
	}
	files := []struct {
		name  string
		write func(w io.Writer) error
	}{
		{"report.json", func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}},
		{"report.html", func(w io.Writer) error { return writeHTML(w, r) }},
		{"participant_days.csv", r.writeParticipantDays},
		{"factors.csv", r.writeFactors},
		{"availability.csv", r.writeAvailability},
		{"hours.csv", r.writeHours},
		{"decisions.jsonl", func(w io.Writer) error { return writeDecisions(ctx, w, run) }},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(w io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing %s: %w", path, cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func writeDecisions(ctx context.Context, w io.Writer, run *Run) error {
	if run.spill != nil {
		return run.spill.writeTo(w)
	}
	if run.Options.SpillDir != "" {
		return errors.New("simulate: the run's decision records are gone (Run.Close)")
	}
	return run.Store.WriteJSONL(ctx, run.Options.Study.Config.ID, w)
}

func f4(x float64) string { return strconv.FormatFloat(x, 'f', 4, 64) }

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func (r *Report) writeParticipantDays(w io.Writer) error {
	rows := make([][]string, 0, len(r.dayRows))
	for _, d := range r.dayRows {
		rows = append(rows, []string{d.Participant, strconv.Itoa(d.Day + 1), strconv.Itoa(d.Decisions), strconv.Itoa(d.Available),
			strconv.Itoa(d.Deliveries), strconv.Itoa(d.Safety), strconv.Itoa(d.Opened), strconv.Itoa(d.Reports), strconv.Itoa(d.Requests)})
	}
	return writeCSV(w, []string{"participant_id", "day", "decisions", "available", "deliveries", "safety", "opened", "self_reports", "self_report_requests"}, rows)
}

func (r *Report) writeFactors(w io.Writer) error {
	var rows [][]string
	for _, f := range r.Factors {
		rows = append(rows, []string{f.Name, "all", strconv.Itoa(f.Randomised), strconv.Itoa(f.Level1), f4(f.Realised), f4(f.Intended)})
		for _, fp := range r.factorPoints {
			if fp.Factor == f.Name {
				rows = append(rows, []string{fp.Factor, fp.DecisionPoint, strconv.Itoa(fp.Randomised), strconv.Itoa(fp.Level1), f4(ratio(fp.Level1, fp.Randomised)), f4(fp.Intended)})
			}
		}
	}
	return writeCSV(w, []string{"factor", "decision_point", "randomised", "level1", "realised_rate", "intended_probability"}, rows)
}

func (r *Report) writeAvailability(w io.Writer) error {
	rows := [][]string{{"available", strconv.Itoa(r.Totals.Available), f4(r.Availability.Rate)}}
	for _, rc := range r.Availability.Reasons {
		rows = append(rows, []string{rc.Reason, strconv.Itoa(rc.Count), f4(rc.Share)})
	}
	for _, rc := range r.Safety.Reasons {
		rows = append(rows, []string{"safety:" + rc.Reason, strconv.Itoa(rc.Count), f4(rc.Share)})
	}
	return writeCSV(w, []string{"reason", "decisions", "share"}, rows)
}

func (r *Report) writeHours(w io.Writer) error {
	var rows [][]string
	for h := range 24 {
		rows = append(rows, []string{strconv.Itoa(h), strconv.Itoa(r.Hours.Decisions[h]), strconv.Itoa(r.Hours.Deliveries[h])})
	}
	return writeCSV(w, []string{"local_hour", "decisions", "deliveries"}, rows)
}

// Summary writes the short text summary `jitai simulate` prints.
func Summary(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "study %s: %d participants x %d days from %s (%s), seed %d\n", r.Study.ID, r.Run.Participants, r.Run.Days, r.Run.Start, r.Run.Timezone, r.Run.Seed)
	t := r.Totals
	fmt.Fprintf(&b, "decisions       %d (deliver %d, none %d, safety %d)\n", t.Decisions, t.Deliver, t.None, t.Safety)
	fmt.Fprintf(&b, "available       %.1f%%", 100*r.Availability.Rate)
	if len(r.Availability.Reasons) > 0 {
		var parts []string
		for _, rc := range r.Availability.Reasons {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", rc.Reason, 100*rc.Share))
		}
		fmt.Fprintf(&b, "; unavailable: %s", strings.Join(parts, ", "))
	}
	b.WriteString("\n")
	d := r.Deliveries
	fmt.Fprintf(&b, "deliveries/day  mean %.2f, max %d (cap %d, %d participant-days over)\n", d.Mean, d.Max, d.Cap, d.DaysOverCap)
	fu := r.Funnel.Overall
	fmt.Fprintf(&b, "funnel          %d points (%d scheduled, %d event, %d app): %d decided, %d missed; deliver %d, sent %d, delivered %d, opened %d, completed %d\n",
		fu.Points, fu.Scheduled, fu.Triggered, fu.Requested, fu.Decided, fu.Missed, fu.Deliver, fu.Sent, fu.Delivered, fu.Opened, fu.Completed)
	fmt.Fprintf(&b, "safety          %d decisions, %d participants\n", r.Safety.Decisions, r.Safety.Participants)
	for _, f := range r.Factors {
		fmt.Fprintf(&b, "factor %-8s realised %.3f, intended %.3f, n %d, z %+.2f\n", f.Name, f.Realised, f.Intended, f.Randomised, f.Z)
	}
	if r.Cells != nil {
		fmt.Fprintf(&b, "cells           %d strata, largest spread within a stratum %d\n", len(r.Cells.Strata), r.Cells.MaxSpread)
	}
	for _, e := range r.Effects {
		fmt.Fprintf(&b, "effect %-8s on %s: %+.3f (true %+.3f)\n", e.Factor, e.Outcome, e.Estimate, e.True)
	}
	p := r.Power
	switch {
	case p.Error != "":
		fmt.Fprintf(&b, "power           %s: %s\n", p.Kind, p.Error)
	case p.Kind == "none":
		fmt.Fprintf(&b, "power           not computed\n")
	case p.Detectable > 0:
		fmt.Fprintf(&b, "power           %s: detectable main effect %.3f with %d participants at 80%%\n", p.Kind, p.Detectable, r.Run.Participants)
	default:
		rel := "="
		if p.AtMost {
			rel = "<="
		}
		fmt.Fprintf(&b, "power           %s: N %s %d for 80%%; power %.3f with %d participants\n", p.Kind, rel, p.N, p.PowerAtN, r.Run.Participants)
		if p.NMissing > 0 {
			rel = "="
			if p.AtMostMissing {
				rel = "<="
			}
			fmt.Fprintf(&b, "                 with %.0f%% of outcomes observed: N %s %d; power %.3f\n", 100*p.ObservedShare, rel, p.NMissing, p.PowerAtNMissing)
		}
	}
	bad := 0
	for _, c := range r.Checks {
		if !c.OK {
			bad++
			fmt.Fprintf(&b, "CHECK FAILED    %s: %s\n", c.Name, c.Detail)
		}
	}
	if bad == 0 {
		fmt.Fprintf(&b, "checks          all %d passed\n", len(r.Checks))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
