package analysis

import (
	"math"
	"strings"
	"testing"
)

// smallMRT is a tiny long-format data set: 6 participants x 4 decision points.
const smallMRT = `id,y,a,p,avail,x,z
1,1.2,1,0.5,1,0.1,1
1,0.3,0,0.5,1,0.4,0
1,NA,0,,0,0.2,1
1,0.9,1,0.5,1,0.8,0
2,0.1,0,0.5,1,0.3,1
2,1.5,1,0.5,1,0.9,0
2,0.4,0,0.5,1,0.2,1
2,1.1,1,0.5,1,0.7,1
3,0.2,0,0.5,1,0.5,0
3,0.8,1,0.5,1,0.1,1
3,0.7,0,0.5,1,0.6,0
3,1.9,1,0.5,1,0.9,1
4,0.5,1,0.5,1,0.2,0
4,0.6,0,0.5,1,0.3,1
4,1.4,1,0.5,1,0.8,0
4,0.2,0,0.5,1,0.4,1
5,0.9,0,0.5,1,0.7,0
5,1.3,1,0.5,1,0.5,1
5,0.1,0,0.5,1,0.1,0
5,1.6,1,0.5,1,0.6,1
6,0.4,1,0.5,1,0.3,1
6,0.2,0,0.5,1,0.9,0
6,1.8,1,0.5,1,0.4,1
6,0.3,0,0.5,1,0.2,0
`

var smallNumeric = []string{"y", "a", "p", "avail", "x", "z"}

func smallSpec() MRTSpec {
	return MRTSpec{ID: "id", Outcome: "y", Treatment: "a", RandProb: Prob{Column: "p"}, Availability: "avail", Controls: []string{"x"}}
}

func readString(t *testing.T, csv string, numeric, text []string) (*Table, error) {
	t.Helper()
	return ReadCSV(strings.NewReader(csv), "small.csv", numeric, text)
}

func mustRead(t *testing.T, csv string) *Table {
	t.Helper()
	tab, err := readString(t, csv, smallNumeric, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// replaceLine replaces data line n (the header is line 1) of csv.
func replaceLine(csv string, n int, line string) string {
	lines := strings.Split(csv, "\n")
	lines[n-1] = line
	return strings.Join(lines, "\n")
}

func TestSmallMRTFits(t *testing.T) {
	tab := mustRead(t, smallMRT)
	for _, est := range []func(*Table, MRTSpec) (*MRTResult, error){WCLS} {
		res, err := est(tab, smallSpec())
		if err != nil {
			t.Fatal(err)
		}
		if res.NParticipants != 6 || res.NEff != 6 || res.Test != "hotelling" {
			t.Errorf("got %+v", res)
		}
	}
}

func TestMRTErrors(t *testing.T) {
	cases := []struct {
		name    string
		csv     string
		spec    func(*MRTSpec)
		emee    bool
		wantErr []string // substrings; none means success
	}{
		{name: "ok"},
		{name: "column does not exist", spec: func(s *MRTSpec) { s.Controls = []string{"nope"} },
			wantErr: []string{`column "nope" does not exist`, "columns: id, y, a, p, avail, x, z"}},
		{name: "probability 1 on an available row", csv: replaceLine(smallMRT, 6, "2,0.1,0,1,1,0.3,1"),
			wantErr: []string{"small.csv:6:", `participant "2"`, `column "p"`, "outside (0,1)"}},
		{name: "probability 0 on an available row", csv: replaceLine(smallMRT, 6, "2,0.1,0,0,1,0.3,1"),
			wantErr: []string{"small.csv:6:", "outside (0,1)"}},
		{name: "probability outside (0,1) on an unavailable row is ignored", csv: replaceLine(smallMRT, 6, "2,0.1,0,0,0,0.3,1")},
		{name: "constant probability outside (0,1)", spec: func(s *MRTSpec) { s.RandProb = Prob{Value: 1.5} },
			wantErr: []string{"randomisation probability 1.5 is outside (0,1)"}},
		{name: "numerator probability outside (0,1)", spec: func(s *MRTSpec) { s.NumeratorProb = Prob{Value: 1} },
			wantErr: []string{"numerator probability 1 is outside (0,1)"}},
		{name: "rows of a participant not contiguous", csv: replaceLine(smallMRT, 14, "2,0.2,0,0.5,1,0.5,0"),
			wantErr: []string{"small.csv:14:", `rows of participant "2" are not contiguous`, "line 9"}},
		{name: "moderator that is not a control", spec: func(s *MRTSpec) { s.Moderators = []string{"z"} },
			wantErr: []string{`moderator "z" is not a control`}},
		{name: "singular design: a constant control",
			spec:    func(s *MRTSpec) { s.Controls = []string{"x", "avail"} },
			wantErr: []string{"singular design", `control "avail"`}},
		{name: "singular design: a duplicated control", spec: func(s *MRTSpec) { s.Controls = []string{"x", "x"} },
			wantErr: []string{`control "x" is listed twice`}},
		{name: "singular design: treatment never varies with the moderator",
			spec:    func(s *MRTSpec) { s.Controls = []string{"x", "p"}; s.Moderators = []string{"p"} },
			wantErr: []string{"singular design"}},
		{name: "missing outcome on an available row", csv: replaceLine(smallMRT, 5, "1,,1,0.5,1,0.8,0"),
			wantErr: []string{"small.csv:5:", `column "y"`, "missing on an available row"}},
		{name: "missing control on an available row", csv: replaceLine(smallMRT, 5, "1,0.9,1,0.5,1,NA,0"),
			wantErr: []string{"small.csv:5:", `column "x"`, "missing"}},
		{name: "missing availability", csv: replaceLine(smallMRT, 5, "1,0.9,1,0.5,,0.8,0"),
			wantErr: []string{"small.csv:5:", `column "avail"`, "availability is missing"}},
		{name: "treatment not 0/1", csv: replaceLine(smallMRT, 5, "1,0.9,2,0.5,1,0.8,0"),
			wantErr: []string{"small.csv:5:", "treatment must be 0 or 1"}},
		{name: "availability not 0/1", csv: replaceLine(smallMRT, 5, "1,0.9,1,0.5,3,0.8,0"),
			wantErr: []string{"availability must be 0 or 1"}},
		{name: "binary outcome for EMEE", emee: true,
			wantErr: []string{"small.csv:2:", "binary outcome must be 0 or 1"}},
		{name: "lincomb of the wrong length", spec: func(s *MRTSpec) { s.Lincombs = [][]float64{{1, 1}} },
			wantErr: []string{"linear combination 1 has 2 coefficients, want 1"}},
		{name: "too few participants", spec: func(s *MRTSpec) { s.Controls = []string{"x", "z", "p"}; s.Moderators = []string{"x", "z"} },
			wantErr: []string{"too few"}},
		{name: "no randomisation probability", spec: func(s *MRTSpec) { s.RandProb = Prob{} },
			wantErr: []string{"no randomisation probability"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			csv := c.csv
			if csv == "" {
				csv = smallMRT
			}
			tab := mustRead(t, csv)
			spec := smallSpec()
			if c.spec != nil {
				c.spec(&spec)
			}
			var err error
			if c.emee {
				_, err = EMEE(tab, spec)
			} else {
				_, err = WCLS(tab, spec)
			}
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", c.wantErr)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadCSVErrors(t *testing.T) {
	cases := []struct {
		name, csv string
		numeric   []string
		want      []string
	}{
		{"not a number", "id,y\n1,2\n1,abc\n", []string{"y"}, []string{"small.csv:3:3:", `column "y"`, `"abc" is not a number`}},
		{"infinite", "id,y\n1,Inf\n", []string{"y"}, []string{"small.csv:2:3:", "not a number"}},
		{"missing column", "id,y\n1,2\n", []string{"y", "w"}, []string{`column "w" does not exist (columns: id, y)`}},
		{"wrong field count", "id,y\n1,2,3\n", []string{"y"}, []string{"small.csv:2:", "wrong number of fields"}},
		{"duplicate header", "id,y,y\n1,2,3\n", []string{"y"}, []string{`column "y" appears twice`}},
		{"empty", "", nil, []string{"empty file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readString(t, c.csv, c.numeric, []string{"id"})
			if err == nil {
				t.Fatalf("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadCSVValues(t *testing.T) {
	csv := "\ufeffid,y,flag,ignored\n a ,1.5,TRUE,zzz\na,NA,false,\nb,,1,x\n"
	tab, err := readString(t, csv, []string{"y", "flag"}, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := tab.Numeric("y")
	flag, _ := tab.Numeric("flag")
	id, _ := tab.Text("id")
	if y[0] != 1.5 || !math.IsNaN(y[1]) || !math.IsNaN(y[2]) {
		t.Errorf("y = %v", y)
	}
	if flag[0] != 1 || flag[1] != 0 || flag[2] != 1 {
		t.Errorf("flag = %v", flag)
	}
	if id[0] != "a" || id[1] != "a" || id[2] != "b" {
		t.Errorf("id = %q", id)
	}
	if tab.Line(2) != 4 || tab.Len() != 3 {
		t.Errorf("line = %d, len = %d", tab.Line(2), tab.Len())
	}
	if _, err := tab.Numeric("ignored"); err == nil || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("ignored column: %v", err)
	}
}

// Unavailable rows carry weight 0: whatever they hold (missing outcome,
// missing probability, any treatment) does not change the estimates.
func TestUnavailableRowsIgnored(t *testing.T) {
	base, err := WCLS(mustRead(t, smallMRT), smallSpec())
	if err != nil {
		t.Fatal(err)
	}
	other := replaceLine(smallMRT, 4, "1,99,1,,0,NA,NA")
	res, err := WCLS(mustRead(t, other), smallSpec())
	if err != nil {
		t.Fatal(err)
	}
	for k := range base.Effects {
		if base.Effects[k] != res.Effects[k] {
			t.Errorf("effect %d changed: %+v vs %+v", k, base.Effects[k], res.Effects[k])
		}
	}
}

// n_eff counts participants with a non-zero weight; the small-sample
// degrees of freedom use it while n_participants counts every id.
func TestNEff(t *testing.T) {
	csv := smallMRT + "7,NA,0,NA,0,0.5,1\n7,NA,0,NA,0,0.5,0\n"
	res, err := WCLS(mustRead(t, csv), smallSpec())
	if err != nil {
		t.Fatal(err)
	}
	if res.NParticipants != 7 || res.NEff != 6 || res.Effects[0].DF2 != 6-3 {
		t.Errorf("n = %d, n_eff = %d, df2 = %d", res.NParticipants, res.NEff, res.Effects[0].DF2)
	}
}

func TestLincombName(t *testing.T) {
	terms := []string{"(Intercept)", "home", "hour"}
	cases := []struct {
		c    []float64
		want string
	}{
		{[]float64{1, 1, 0}, "(Intercept) + home"},
		{[]float64{2, -1, 0}, "2*(Intercept) - home"},
		{[]float64{0, -1, 0.5}, "-home + 0.5*hour"},
		{[]float64{0, -2, 1}, "- 2*home + hour"},
		{[]float64{1, 0, -3}, "(Intercept) - 3*hour"},
	}
	for _, c := range cases {
		if got := LincombName(c.c, terms); got != c.want {
			t.Errorf("LincombName(%v) = %q, want %q", c.c, got, c.want)
		}
	}
}

func TestFactorialErrors(t *testing.T) {
	// A 2^(3-1) fraction with C = AB: the A:B interaction is aliased with C.
	const frac = "y,A,B,C,g\n1.0,lo,lo,hi,1\n2.5,hi,lo,lo,2\n0.5,lo,hi,lo,3\n3.1,hi,hi,hi,2\n" +
		"1.2,lo,lo,hi,1\n2.4,hi,lo,lo,2\n0.7,lo,hi,lo,3\n3.0,hi,hi,hi,2\n"
	cases := []struct {
		name string
		csv  string
		spec FactorialSpec
		want []string
	}{
		{"aliased interaction", frac, FactorialSpec{Outcome: "y", Factors: []string{"A", "B", "C"}, Interactions: [][]string{{"A", "B"}}},
			[]string{"singular design", `term "A:B"`}},
		{"three levels", frac, FactorialSpec{Outcome: "y", Factors: []string{"A", "g"}},
			[]string{`factor "g" has 3 levels`}},
		{"unknown level", frac, FactorialSpec{Outcome: "y", Factors: []string{"A"}, Levels: map[string][2]string{"A": {"off", "on"}}},
			[]string{"small.csv:2:", `level "lo" is neither`}},
		{"unknown factor in interaction", frac, FactorialSpec{Outcome: "y", Factors: []string{"A", "B"}, Interactions: [][]string{{"A", "D"}}},
			[]string{`"D" is not a factor`}},
		{"too many terms", strings.Join(strings.Split(frac, "\n")[:4], "\n") + "\n", FactorialSpec{Outcome: "y", Factors: []string{"A", "B"}, Order: 2},
			[]string{"singular design", "3 runs cannot estimate 4 coefficients"}},
		{"column does not exist", frac, FactorialSpec{Outcome: "y", Factors: []string{"A", "Z"}},
			[]string{`column "Z" does not exist`}},
		{"missing outcome", "y,A\n1,lo\n,hi\n", FactorialSpec{Outcome: "y", Factors: []string{"A"}},
			[]string{"small.csv:3:", "outcome is missing"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := []string{"A"}
			if strings.HasPrefix(c.csv, "y,A,B,C,g") {
				text = []string{"A", "B", "C", "g"}
			}
			tab, err := readString(t, c.csv, []string{"y"}, text)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Factorial(tab, c.spec)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Levels: --levels decides which level is low; without it the sorted first
// level is low (numeric order for numbers); flipping the coding flips the
// sign of the coefficient.
func TestFactorialLevels(t *testing.T) {
	const csv = "y,A,B\n1,off,10\n2,on,10\n4,off,9\n7,on,9\n"
	tab, err := readString(t, csv, []string{"y"}, []string{"A", "B"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Factorial(tab, FactorialSpec{Outcome: "y", Factors: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []FactorLevels{{"A", "off", "on"}, {"B", "9", "10"}}
	for i, w := range want {
		if res.Levels[i] != w {
			t.Errorf("levels %d = %+v, want %+v", i, res.Levels[i], w)
		}
	}
	// Mean at A=on minus mean at A=off: (2+7)/2 - (1+4)/2 = 2.
	if e := float64(res.Coefficients[1].Effect); math.Abs(e-2) > 1e-12 {
		t.Errorf("effect of A = %v, want 2", e)
	}
	// B: 10 is high; mean at 10 minus mean at 9: 1.5 - 5.5 = -4.
	if e := float64(res.Coefficients[2].Effect); math.Abs(e+4) > 1e-12 {
		t.Errorf("effect of B = %v, want -4", e)
	}
	res, err = Factorial(tab, FactorialSpec{Outcome: "y", Factors: []string{"A", "B"}, Levels: map[string][2]string{"A": {"on", "off"}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := float64(res.Coefficients[1].Effect); math.Abs(e+2) > 1e-12 {
		t.Errorf("effect of A with on low = %v, want -2", e)
	}
}
