package analysis

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type factorialCase struct {
	Name string `json:"name"`
	Data string `json:"data"`
	Spec struct {
		Outcome      string               `json:"outcome"`
		Factors      []string             `json:"factors"`
		Levels       map[string][2]string `json:"levels"`
		Interactions [][]string           `json:"interactions"`
		Order        int                  `json:"order"`
		Covariates   []string             `json:"covariates"`
	} `json:"spec"`
	ResidualDF   *int `json:"residual_df"`
	Coefficients []struct {
		Term     string   `json:"term"`
		Estimate *float64 `json:"estimate"`
		Effect   *float64 `json:"effect"`
	} `json:"coefficients"`
	ANOVA []struct {
		Term   string   `json:"term"`
		DF     *int     `json:"df"`
		SumSq  *float64 `json:"sum_sq"`
		F      *float64 `json:"f"`
		PValue *float64 `json:"p_value"`
	} `json:"anova"`
}

func TestFactorialReference(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "factorial_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []factorialCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			tab := loadFactorialTable(t, c.Data, c.Spec.Factors)
			res, err := Factorial(tab, FactorialSpec{
				Outcome: c.Spec.Outcome, Factors: c.Spec.Factors, Levels: c.Spec.Levels,
				Interactions: c.Spec.Interactions, Order: c.Spec.Order, Covariates: c.Spec.Covariates,
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.ResidualDF != nil && res.ResidualDF != *c.ResidualDF {
				t.Errorf("residual df = %d, want %d", res.ResidualDF, *c.ResidualDF)
			}
			coef := map[string]Coefficient{}
			for _, x := range res.Coefficients {
				coef[x.Term] = x
			}
			for _, w := range c.Coefficients {
				g, ok := coef[w.Term]
				if !ok {
					t.Errorf("no coefficient %q", w.Term)
					continue
				}
				checkRel(t, w.Term+" estimate", g.Estimate, w.Estimate)
				checkRel(t, w.Term+" effect", float64(g.Effect), w.Effect)
			}
			rows := map[string]ANOVARow{}
			for _, x := range res.ANOVA {
				rows[x.Term] = x
			}
			for _, w := range c.ANOVA {
				g, ok := rows[w.Term]
				if !ok {
					t.Errorf("no ANOVA row %q", w.Term)
					continue
				}
				if w.DF != nil && g.DF != *w.DF {
					t.Errorf("%s df = %d, want %d", w.Term, g.DF, *w.DF)
				}
				checkRel(t, w.Term+" sum_sq", g.SumSq, w.SumSq)
				// The published F statistics and p-values have 8 and 4-7
				// significant digits: compare to what is printed.
				if w.F != nil && math.Abs(float64(g.F)-*w.F) > 5e-6 {
					t.Errorf("%s F = %.10g, want %.10g", w.Term, float64(g.F), *w.F)
				}
				if w.PValue != nil && math.Abs(float64(g.PValue)-*w.PValue) > 5e-8 {
					t.Errorf("%s p = %.10g, want %.10g", w.Term, float64(g.PValue), *w.PValue)
				}
			}
		})
	}
}

// loadFactorialTable reads a CSV with the factors as text and the rest numeric.
func loadFactorialTable(t testing.TB, file string, factors []string) *Table {
	t.Helper()
	path := filepath.Join("testdata", file)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := ReadCSV(strings.NewReader(string(raw)), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	isFactor := map[string]bool{}
	for _, f := range factors {
		isFactor[f] = true
	}
	var numeric []string
	for _, c := range hdr.Columns() {
		if !isFactor[c] {
			numeric = append(numeric, c)
		}
	}
	tab, err := ReadCSV(strings.NewReader(string(raw)), path, numeric, factors)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
