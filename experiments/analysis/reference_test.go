package analysis

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The reference cases live in testdata/mrt_reference.json: adding a case is
// adding an entry there. Only the figures a case lists are checked.
type refSpec struct {
	ID            string      `json:"id"`
	Outcome       string      `json:"outcome"`
	Treatment     string      `json:"treatment"`
	RandProb      string      `json:"rand_prob"`
	Availability  string      `json:"availability"`
	Controls      []string    `json:"controls"`
	Moderators    []string    `json:"moderators"`
	NumeratorProb string      `json:"numerator_prob"`
	Lincombs      [][]float64 `json:"lincombs"`
}

func (s refSpec) mrt() MRTSpec {
	out := MRTSpec{
		ID: s.ID, Outcome: s.Outcome, Treatment: s.Treatment,
		RandProb: ParseProb(s.RandProb), Availability: s.Availability,
		Controls: s.Controls, Moderators: s.Moderators, Lincombs: s.Lincombs,
	}
	if s.NumeratorProb != "" {
		out.NumeratorProb = ParseProb(s.NumeratorProb)
	}
	return out
}

type refEstimate struct {
	Term      string   `json:"term"`
	Estimate  *float64 `json:"estimate"`
	StdErr    *float64 `json:"std_err"`
	CILow     *float64 `json:"ci_low"`
	CIHigh    *float64 `json:"ci_high"`
	Statistic *float64 `json:"statistic"`
	DF1       *int     `json:"df1"`
	DF2       *int     `json:"df2"`
	PValue    *float64 `json:"p_value"`
}

type refCase struct {
	Name          string        `json:"name"`
	Estimator     string        `json:"estimator"`
	Data          string        `json:"data"`
	Spec          refSpec       `json:"spec"`
	NParticipants *int          `json:"n_participants"`
	NEff          *int          `json:"n_eff"`
	Test          string        `json:"test"`
	Effects       []refEstimate `json:"effects"`
	Controls      []refEstimate `json:"controls"`
}

// Tolerances of the reference README: estimates, standard errors (and here
// also interval ends and statistics) to a relative 1e-6, p-values to 1e-6
// absolute.
const (
	relTol = 1e-6
	pTol   = 1e-6
)

var tableCache sync.Map

// loadTable reads a testdata CSV with every column loaded (ids as text).
func loadTable(t testing.TB, file, idCol string) *Table {
	t.Helper()
	key := file + "\x00" + idCol
	if v, ok := tableCache.Load(key); ok {
		return v.(*Table)
	}
	path := filepath.Join("testdata", file)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// First pass for the header.
	hdr, err := ReadCSV(f, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var numeric []string
	for _, c := range hdr.Columns() {
		if c != idCol {
			numeric = append(numeric, c)
		}
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	text := []string{}
	if idCol != "" {
		text = append(text, idCol)
	}
	tab, err := ReadCSV(f, path, numeric, text)
	if err != nil {
		t.Fatal(err)
	}
	tableCache.Store(key, tab)
	return tab
}

func checkRel(t *testing.T, what string, got float64, want *float64) {
	t.Helper()
	if want == nil {
		return
	}
	if math.Abs(got-*want) > relTol*math.Abs(*want) {
		t.Errorf("%s = %.12g, want %.12g (relative error %.2g)", what, got, *want, math.Abs(got-*want)/math.Abs(*want))
	}
}

func checkEstimates(t *testing.T, kind string, got []Estimate, want []refEstimate) {
	t.Helper()
	byTerm := map[string]Estimate{}
	for _, e := range got {
		byTerm[e.Term] = e
	}
	for _, w := range want {
		g, ok := byTerm[w.Term]
		if !ok {
			t.Errorf("%s: no term %q in %+v", kind, w.Term, got)
			continue
		}
		p := kind + " " + w.Term + ": "
		checkRel(t, p+"estimate", g.Estimate, w.Estimate)
		checkRel(t, p+"std_err", g.StdErr, w.StdErr)
		checkRel(t, p+"ci_low", g.CILow, w.CILow)
		checkRel(t, p+"ci_high", g.CIHigh, w.CIHigh)
		checkRel(t, p+"statistic", g.Statistic, w.Statistic)
		if w.DF1 != nil && g.DF1 != *w.DF1 {
			t.Errorf("%sdf1 = %d, want %d", p, g.DF1, *w.DF1)
		}
		if w.DF2 != nil && g.DF2 != *w.DF2 {
			t.Errorf("%sdf2 = %d, want %d", p, g.DF2, *w.DF2)
		}
		if w.PValue != nil && math.Abs(g.PValue-*w.PValue) > pTol {
			t.Errorf("%sp_value = %.12g, want %.12g", p, g.PValue, *w.PValue)
		}
	}
}

func TestMRTReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "mrt_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []refCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			tab := loadTable(t, c.Data, c.Spec.ID)
			var res *MRTResult
			var err error
			switch c.Estimator {
			case "wcls":
				res, err = WCLS(tab, c.Spec.mrt())
			case "emee":
				res, err = EMEE(tab, c.Spec.mrt())
			default:
				t.Fatalf("unknown estimator %q", c.Estimator)
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.NParticipants != nil && res.NParticipants != *c.NParticipants {
				t.Errorf("n_participants = %d, want %d", res.NParticipants, *c.NParticipants)
			}
			if c.NEff != nil && res.NEff != *c.NEff {
				t.Errorf("n_eff = %d, want %d", res.NEff, *c.NEff)
			}
			if c.Test != "" && res.Test != c.Test {
				t.Errorf("test = %q, want %q", res.Test, c.Test)
			}
			checkEstimates(t, "effect", res.Effects, c.Effects)
			checkEstimates(t, "control", res.Controls, c.Controls)
		})
	}
}
