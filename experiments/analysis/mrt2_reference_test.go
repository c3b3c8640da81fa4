package analysis

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mrt2Effect is one row of testdata/mrt2/expected_shared.json (figures of R
// 4.2.2 with MRTAnalysis 0.3.1).
type mrt2Effect struct {
	Term             string   `json:"term"`
	Estimate         float64  `json:"estimate"`
	StdErr           float64  `json:"std_err"`
	StdErrUnadjusted *float64 `json:"std_err_unadjusted"`
	CILow            float64  `json:"ci_low"`
	CIHigh           float64  `json:"ci_high"`
	TValue           *float64 `json:"t_value"`
	DF               *int     `json:"df"`
	Test             string   `json:"test"`
	Statistic        *float64 `json:"statistic"`
	DF1              *int     `json:"df1"`
	DF2              *int     `json:"df2"`
	PValue           float64  `json:"p_value"`
}

type mrt2Case struct {
	Name    string       `json:"name"`
	Data    string       `json:"data"`
	RCall   string       `json:"r_call"`
	Effects []mrt2Effect `json:"effects"`
}

// loadMRT2Cases reads every case of expected_shared.json by estimator.
func loadMRT2Cases(t testing.TB) map[string][]mrt2Case {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "mrt2", "expected_shared.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string][]mrt2Case
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

// splitRCall splits a case's r_call, `fit <- FN(...); summary(fit, ...)`,
// into the fit and the summary calls.
func splitRCall(s string) (fit, summary *rCall, err error) {
	fitText, sumText, ok := strings.Cut(s, "; ")
	fitText, ok2 := strings.CutPrefix(fitText, "fit <- ")
	if !ok || !ok2 {
		return nil, nil, fmt.Errorf("r_call %q is not `fit <- ...; summary(fit, ...)`", s)
	}
	if fit, err = parseRCall(fitText); err != nil {
		return nil, nil, err
	}
	if summary, err = parseRCall(sumText); err != nil {
		return nil, nil, err
	}
	if summary.fn != "summary" || len(summary.positional) != 1 || summary.positional[0] != "fit" {
		return nil, nil, fmt.Errorf("unexpected summary call %q", sumText)
	}
	return fit, summary, nil
}

// mrtSpecFromR translates the arguments wcls, emee, emee2 and dcee share.
func mrtSpecFromR(fit, summary *rCall) (MRTSpec, error) {
	var s MRTSpec
	fit.strs(map[string]*string{"id": &s.ID, "outcome": &s.Outcome, "treatment": &s.Treatment, "availability": &s.Availability})
	var err error
	if s.RandProb, err = fit.prob("rand_prob"); err != nil {
		return s, err
	}
	if s.NumeratorProb, err = fit.prob("numerator_prob"); err != nil {
		return s, err
	}
	if s.Moderators, err = fit.formula("moderator_formula"); err != nil {
		return s, err
	}
	if s.Controls, err = fit.formula("control_formula"); err != nil {
		return s, err
	}
	l, err := summary.vector("lincomb")
	if l != nil {
		s.Lincombs = [][]float64{l}
	}
	return s, err
}

// runMRT2Case runs the estimator a case's R call names.
func runMRT2Case(tab *Table, fit, summary *rCall) (*MRTResult, error) {
	switch fit.fn {
	case "wcls", "emee", "emee2":
		s, err := mrtSpecFromR(fit, summary)
		if err != nil {
			return nil, err
		}
		est := map[string]func(*Table, MRTSpec) (*MRTResult, error){"wcls": WCLS, "emee": EMEE, "emee2": EMEE2}[fit.fn]
		return est(tab, s)
	case "dcee":
		s, err := mrtSpecFromR(fit, summary)
		if err != nil {
			return nil, err
		}
		if cf, _ := fit.str("cross_fit"); cf != "FALSE" {
			return nil, fmt.Errorf("dcee: cross_fit = %q is not implemented", cf)
		}
		method, _ := fit.str("control_reg_method")
		return DCEE(tab, DCEESpec{MRTSpec: s, ControlRegMethod: method})
	case "mcee", "mcee_general":
		s, err := mceeSpecFromR(fit, summary)
		if err != nil {
			return nil, err
		}
		return MCEE(tab, s)
	}
	return nil, fmt.Errorf("no estimator for %s", fit.fn)
}

// worstDiff keeps the largest differences from the reference per estimator.
type worstDiff struct{ est, se, ci, p float64 }

func relDiff(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// checkMRT2Effect compares one row to relative 1e-6 (estimate, standard
// errors, statistic) and absolute 1e-6 (CI ends, p-value).
func checkMRT2Effect(t *testing.T, fn, test string, g Estimate, w mrt2Effect, worst *worstDiff) {
	t.Helper()
	p := w.Term + ": "
	rel := func(what string, got, want float64) float64 {
		d := relDiff(got, want)
		if !(d <= relTol) {
			t.Errorf("%s%s = %.15g, want %.15g (relative difference %.2g)", p, what, got, want, d)
		}
		return d
	}
	abs := func(what string, got, want float64) float64 {
		d := math.Abs(got - want)
		if !(d <= pTol) {
			t.Errorf("%s%s = %.15g, want %.15g (difference %.2g)", p, what, got, want, d)
		}
		return d
	}
	worst.est = math.Max(worst.est, rel("estimate", g.Estimate, w.Estimate))
	worst.se = math.Max(worst.se, rel("std_err", g.StdErr, w.StdErr))
	if w.StdErrUnadjusted != nil && fn == "emee2" {
		worst.se = math.Max(worst.se, rel("std_err_unadjusted", g.StdErrUnadjusted, *w.StdErrUnadjusted))
	}
	worst.ci = math.Max(worst.ci, math.Max(abs("ci_low", g.CILow, w.CILow), abs("ci_high", g.CIHigh, w.CIHigh)))
	worst.p = math.Max(worst.p, abs("p_value", g.PValue, w.PValue))
	if w.TValue != nil {
		rel("t_value", g.Statistic, *w.TValue)
	}
	if w.Statistic != nil {
		rel("statistic", g.Statistic, *w.Statistic)
	}
	for _, df := range []struct {
		what string
		got  int
		want *int
	}{{"df", g.DF2, w.DF}, {"df1", g.DF1, w.DF1}, {"df2", g.DF2, w.DF2}} {
		if df.want != nil && df.got != *df.want {
			t.Errorf("%s%s = %d, want %d", p, df.what, df.got, *df.want)
		}
	}
	if w.Test != "" && !strings.EqualFold(w.Test, test) {
		t.Errorf("%stest = %q, want %q", p, test, w.Test)
	}
}

// TestMRT2Reference runs every case of testdata/mrt2/expected_shared.json
// (emee2, dcee, mcee and mcee_general, emee, wcls) from its R call and
// compares every row the summary printed.
func TestMRT2Reference(t *testing.T) {
	file := loadMRT2Cases(t)
	for _, fam := range []string{"emee2", "dcee", "mcee", "emee", "wcls"} {
		if len(file[fam]) == 0 {
			t.Errorf("no %s cases", fam)
		}
	}
	worst := map[string]*worstDiff{}
	for fam, cases := range file {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				fit, summary, err := splitRCall(c.RCall)
				if err != nil {
					t.Fatal(err)
				}
				idCol, _ := fit.str("id")
				res, err := runMRT2Case(loadTable(t, filepath.Join("mrt2", c.Data), idCol), fit, summary)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Effects) != len(c.Effects) {
					t.Errorf("%d effect rows, want %d", len(res.Effects), len(c.Effects))
				}
				if worst[fam] == nil {
					worst[fam] = &worstDiff{}
				}
				for k, w := range c.Effects {
					if k >= len(res.Effects) || res.Effects[k].Term != w.Term {
						t.Errorf("row %d: want term %q in order, got %+v", k, w.Term, res.Effects)
						continue
					}
					checkMRT2Effect(t, fit.fn, res.Test, res.Effects[k], w, worst[fam])
				}
			})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(worst)) {
		w := worst[f]
		t.Logf("%-6s worst: estimate rel %.1e, std_err rel %.1e, CI abs %.1e, p abs %.1e", f, w.est, w.se, w.ci, w.p)
	}
}

// mceeSpecFromR translates an mcee call, or an mcee_general call whose
// nuisance configurations mcee can express (p known, q by glm, eta, mu and
// nu by lm; q and mu with the same formula, eta and nu with the same
// formula).
func mceeSpecFromR(fit, summary *rCall) (MCEESpec, error) {
	var s MCEESpec
	fit.strs(map[string]*string{"id": &s.ID, "dp": &s.DP, "outcome": &s.Outcome, "treatment": &s.Treatment,
		"mediator": &s.Mediator, "availability": &s.Availability})
	var err error
	if s.EffectForm, err = fit.formula("time_varying_effect_form"); err != nil {
		return s, err
	}
	if fit.fn == "mcee" {
		s.ControlRegMethod, _ = fit.str("control_reg_method")
		if s.RandProb, err = fit.prob("rand_prob"); err != nil {
			return s, err
		}
		if s.MediatorControls, err = fit.formula("control_formula_with_mediator"); err != nil {
			return s, err
		}
	} else if err := mceeGeneralConfigs(fit, &s); err != nil {
		return s, err
	}
	for name, to := range map[string]*[][]float64{"lincomb_alpha": &s.LincombAlpha, "lincomb_beta": &s.LincombBeta, "lincomb_joint": &s.LincombJoint} {
		l, err := summary.vector(name)
		if err != nil {
			return s, err
		}
		if l != nil {
			*to = [][]float64{l}
		}
	}
	return s, nil
}

// mceeGeneralConfigs reads the config_* arguments of mcee_general.
func mceeGeneralConfigs(fit *rCall, s *MCEESpec) error {
	cfg := map[string]*rCall{}
	for _, target := range []string{"p", "q", "eta", "mu", "nu"} {
		c, err := parseRCall(fit.named["config_"+target])
		if err != nil {
			return err
		}
		want := map[string]string{"p": "mcee_config_known", "q": "mcee_config_glm"}[target]
		if want == "" {
			want = "mcee_config_lm"
		}
		if c.fn != want || len(c.positional) != 2 || unquote(c.positional[0]) != target {
			return fmt.Errorf("config_%s = %s(%v) is not expressible with MCEE (want %s(%q, ...))", target, c.fn, c.positional, want, target)
		}
		cfg[target] = c
	}
	var err error
	if s.RandProb, err = rProb(cfg["p"].positional[1]); err != nil {
		return err
	}
	formula := func(target string) []string {
		f, ferr := rFormula(cfg[target].positional[1])
		if ferr != nil {
			err = ferr
		}
		return f
	}
	s.MediatorControls, s.Controls = formula("q"), formula("eta")
	mu, nu := formula("mu"), formula("nu")
	if err != nil {
		return err
	}
	if strings.Join(mu, "+") != strings.Join(s.MediatorControls, "+") || strings.Join(nu, "+") != strings.Join(s.Controls, "+") {
		return fmt.Errorf("mcee_general: q and mu, and eta and nu, must share their formulas to be expressed with MCEE")
	}
	s.ControlRegMethod = ControlRegGLM
	return nil
}

// benchmarkMRT2 times the estimator of the named reference case.
func benchmarkMRT2(b *testing.B, fam, name string) {
	for _, c := range loadMRT2Cases(b)[fam] {
		if c.Name != name {
			continue
		}
		fit, summary, err := splitRCall(c.RCall)
		if err != nil {
			b.Fatal(err)
		}
		idCol, _ := fit.str("id")
		tab := loadTable(b, filepath.Join("mrt2", c.Data), idCol)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := runMRT2Case(tab, fit, summary); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.Fatalf("no case %s/%s", fam, name)
}

func BenchmarkEMEE2(b *testing.B) { benchmarkMRT2(b, "emee2", "shared_emee2_home") }
func BenchmarkDCEE(b *testing.B)  { benchmarkMRT2(b, "dcee", "shared_dcee_lm_home") }
func BenchmarkMCEE(b *testing.B)  { benchmarkMRT2(b, "mcee", "shared_mcee_glm_dp") }
