package analysis

import (
	"strings"
	"testing"
)

// FuzzReadCSV feeds arbitrary text to the CSV reader and, when it reads, to
// the estimators: neither may panic, and a table that reads has consistent
// column lengths. Seeds are below and in testdata/fuzz/FuzzReadCSV.
func FuzzReadCSV(f *testing.F) {
	f.Add("id,y,a,p\n1,0.5,1,0.5\n1,0.2,0,0.5\n2,1,1,0.4\n2,0,0,0.4\n3,1,0,0.5\n3,0,1,0.5\n")
	f.Add("id,y,a,p\n1,NA,1,0.5\n2,,0,\n")
	f.Add("id,y,a,p\n1,1,1,1\n")
	f.Add("id,y,a,p\n\"1\n2\",1,0,0.5\n")
	f.Add("\ufeffid,y,a,p\n1,TRUE,FALSE,0.5\n")
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := ReadCSV(strings.NewReader(s), "fuzz.csv", []string{"y", "a", "p"}, []string{"id"})
		if err != nil {
			return
		}
		for _, c := range []string{"y", "a", "p"} {
			v, err := tab.Numeric(c)
			if err != nil || len(v) != tab.Len() {
				t.Fatalf("column %s: %d values, %d rows, %v", c, len(v), tab.Len(), err)
			}
		}
		spec := MRTSpec{ID: "id", Outcome: "y", Treatment: "a", RandProb: Prob{Column: "p"}}
		_, _ = WCLS(tab, spec)
		_, _ = EMEE(tab, spec)
		_, _ = EMEE2(tab, spec)
		_, _ = DCEE(tab, DCEESpec{MRTSpec: spec, ControlRegMethod: ControlRegSetToZero})
		_, _ = MCEE(tab, MCEESpec{ID: "id", DP: "p", Outcome: "y", Treatment: "a", Mediator: "p", RandProb: Prob{Value: 0.5}})
	})
}
