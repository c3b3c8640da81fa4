package design

import (
	"encoding/csv"
	"errors"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The minimum-aberration facts of the reference README (FrF2).
func TestDesignReferenceFacts(t *testing.T) {
	tests := []struct {
		k, runs    int
		generators []string
		resolution int
		wlp        []int64
		aliases    []string // nil: not checked
	}{
		{4, 8, []string{"D=ABC"}, 4, []int64{0, 1}, nil},
		{5, 16, []string{"E=ABCD"}, 5, []int64{0, 0, 1}, nil},
		{6, 16, []string{"E=ABC", "F=ABD"}, 4, []int64{0, 3}, nil},
		{7, 16, []string{"E=ABC", "F=ABD", "G=ACD"}, 4, []int64{0, 7},
			[]string{"AB=CE=DF", "AC=BE=DG", "AD=BF=CG", "AE=BC=FG", "AF=BD=EG", "AG=CD=EF", "BG=CF=DE"}},
	}
	for _, tt := range tests {
		d, err := MinimumAberration(tt.k, tt.runs, 0)
		if err != nil {
			t.Fatalf("MinimumAberration(%d, %d): %v", tt.k, tt.runs, err)
		}
		name := strconv.Itoa(tt.k) + " factors in " + strconv.Itoa(tt.runs) + " runs"
		if got := d.Generators(); !slices.Equal(got, tt.generators) {
			t.Errorf("%s: generators %v, want %v", name, got, tt.generators)
		}
		if got := d.Resolution(); got != tt.resolution {
			t.Errorf("%s: resolution %d, want %d", name, got, tt.resolution)
		}
		if got := d.WLP(); !slices.Equal(got, tt.wlp) {
			t.Errorf("%s: WLP %v, want %v", name, got, tt.wlp)
		}
		if tt.aliases != nil {
			if got := d.Aliases(); !slices.Equal(got, tt.aliases) {
				t.Errorf("%s: aliases %v, want %v", name, got, tt.aliases)
			}
		}
		if !d.ProvenMinimumAberration() {
			t.Errorf("%s: not proven minimum aberration", name)
		}
	}
}

// The FrF2 design matrices of the reference README, row order and signs.
func TestDesignReferenceMatrices(t *testing.T) {
	tests := []struct {
		file    string
		k, runs int
	}{
		{"frf2_8run_4fac_MA.csv", 4, 8},
		{"frf2_16run_5fac_MA.csv", 5, 16},
		{"frf2_16run_7fac_MA.csv", 7, 16},
	}
	for _, tt := range tests {
		header, want := readMatrixCSV(t, filepath.Join("testdata", tt.file))
		d, err := MinimumAberration(tt.k, tt.runs, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(header, d.Names()) {
			t.Errorf("%s: factor names %v, want %v", tt.file, d.Names(), header)
		}
		got := d.Matrix()
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", tt.file, len(got), len(want))
		}
		for i := range want {
			if !slices.Equal(got[i], want[i]) {
				t.Errorf("%s: row %d = %v, want %v", tt.file, i+1, got[i], want[i])
			}
		}
		rows := d.Rows()
		for i := range rows {
			for j, v := range rows[i] {
				if 2*v-1 != want[i][j] {
					t.Fatalf("%s: Rows()[%d][%d] = %d, want level of %d", tt.file, i, j, v, want[i][j])
				}
			}
		}
	}
}

func readMatrixCSV(t *testing.T, path string) ([]string, [][]int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var m [][]int
	for _, rec := range recs[1:] {
		row := make([]int, len(rec))
		for j, s := range rec {
			if row[j], err = strconv.Atoi(s); err != nil {
				t.Fatal(err)
			}
		}
		m = append(m, row)
	}
	return recs[0], m
}

// Alias structures printed by FrF2 (tests/FrF2test.Rout.save and
// tests/generators.summary.test.Rout.save of the FrF2 sources): main-effect
// chains first, then 2FI chains.
func TestDesignFrF2AliasStructures(t *testing.T) {
	tests := []struct {
		name    string
		k       int
		gens    []string
		aliases []string
		clear   []string // nil: not checked
		wlp     []int64
	}{
		{ // catalogue design 6-2.2: gen 3, 13; WLP 0 0 1 1 1; 6 clear 2FIs
			"6-2.2", 6, []string{"3", "13"},
			[]string{"A=BE", "B=AE", "E=AB", "AC=DF", "AD=CF", "AF=CD"},
			[]string{"BC", "BD", "BF", "CE", "DE", "EF"},
			[]int64{1, 1, 1},
		},
		{ // FrF2(16, generators=c(7,13,15))
			"7,13,15", 7, []string{"E=ABC", "F=ACD", "G=ABCD"},
			[]string{"B=FG", "D=EG", "E=DG", "F=BG", "G=BF=DE", "AB=CE", "AC=BE=DF", "AD=CF", "AE=BC", "AF=CD", "BD=EF"},
			nil, nil,
		},
		{ // catalogue design 6-2.1: AB=CE=DF, AC=BE, AD=BF, AE=BC, ...
			"6-2.1", 6, []string{"E=ABC", "F=ABD"},
			[]string{"AB=CE=DF", "AC=BE", "AD=BF", "AE=BC", "AF=BD", "CD=EF", "CF=DE"},
			[]string{}, []int64{0, 3},
		},
		{ // FrF2(32, 7, blocks=4): design generators F=ABC, G=ABD
			"32 runs F=ABC G=ABD", 7, []string{"F=ABC", "G=ABD"},
			[]string{"AB=CF=DG", "AC=BF", "AD=BG", "AF=BC", "AG=BD", "CD=FG", "CG=DF"},
			nil, []int64{0, 3},
		},
	}
	for _, tt := range tests {
		d, err := FromGenerators(tt.k, tt.gens)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := d.Aliases(); !slices.Equal(got, tt.aliases) {
			t.Errorf("%s: aliases\n got %v\nwant %v", tt.name, got, tt.aliases)
		}
		if tt.clear != nil {
			if got := d.Clear2FIs(); !slices.Equal(got, tt.clear) {
				t.Errorf("%s: clear 2FIs %v, want %v", tt.name, got, tt.clear)
			}
		}
		if tt.wlp != nil {
			if got := d.WLP(); !slices.Equal(got, tt.wlp) {
				t.Errorf("%s: WLP %v, want %v", tt.name, got, tt.wlp)
			}
		}
		if d.ProvenMinimumAberration() || d.Searched() {
			t.Errorf("%s: user-given design reported as searched", tt.name)
		}
	}
}

// Word-length patterns, resolutions and clear 2FIs of known designs.
func TestDesignKnownDesigns(t *testing.T) {
	tests := []struct {
		k          int
		gens       []string
		wlp        []int64
		resolution int
		nclear     int
		relation   []string
	}{
		// 2^(5-2) D=AB, E=AC: I = ABD = ACE = BCDE.
		{5, []string{"D=AB", "E=AC"}, []int64{2, 1}, 3, 0, []string{"ABD", "ACE", "BCDE"}},
		// 2^(7-4) saturated 8 runs: 7 words of length 3, 7 of length 4, 1 of 7.
		{7, []string{"D=AB", "E=AC", "F=BC", "G=ABC"}, []int64{7, 7, 0, 0, 1}, 3, 0, nil},
		// 2^(8-4) even design in 16 runs (resolution IV, 14 words of length 4).
		{8, []string{"E=BCD", "F=ACD", "G=ABC", "H=ABD"}, []int64{0, 14, 0, 0, 0, 1}, 4, 0, nil},
		// 2^(6-1) resolution VI: all 15 2FIs clear.
		{6, []string{"F=ABCDE"}, []int64{0, 0, 0, 1}, 6, 15, []string{"ABCDEF"}},
		// 2^(8-2) resolution V in 64 runs (G=ABCD, H=ABEF).
		{8, []string{"G=ABCD", "H=ABEF"}, []int64{0, 0, 2, 1}, 5, 28, []string{"ABCDG", "ABEFH", "CDEFGH"}},
		// 2^(9-4) in 32 runs with 8 clear 2FIs... F=ABC G=ABD H=ACDE J=BCDE.
		{9, []string{"F=ABC", "G=ABD", "H=ACDE", "J=BCDE"}, nil, 4, -1, nil},
	}
	for _, tt := range tests {
		d, err := FromGenerators(tt.k, tt.gens)
		if err != nil {
			t.Fatal(err)
		}
		if tt.wlp != nil {
			if got := d.WLP(); !slices.Equal(got, tt.wlp) {
				t.Errorf("%v: WLP %v, want %v", tt.gens, got, tt.wlp)
			}
		}
		if got := d.Resolution(); got != tt.resolution {
			t.Errorf("%v: resolution %d, want %d", tt.gens, got, tt.resolution)
		}
		if tt.nclear >= 0 {
			if got := len(d.Clear2FIs()); got != tt.nclear {
				t.Errorf("%v: %d clear 2FIs, want %d", tt.gens, got, tt.nclear)
			}
		}
		if tt.relation != nil {
			got, complete := d.DefiningRelation()
			if !complete || !slices.Equal(got, tt.relation) {
				t.Errorf("%v: defining relation %v (complete %v), want %v", tt.gens, got, complete, tt.relation)
			}
		}
		checkIndependently(t, d)
	}
}

// checkIndependently recomputes the defining relation, word-length pattern,
// aliases and clear 2FIs of d from its -1/+1 matrix, by brute force.
func checkIndependently(t *testing.T, d *Design) {
	t.Helper()
	m := d.Matrix()
	k, n := d.Factors(), d.Runs()
	col := func(set uint64) string { // the product column as a string of signs
		var b strings.Builder
		for r := 0; r < n; r++ {
			v := 1
			for s := set; s != 0; s &= s - 1 {
				v *= m[r][bits.TrailingZeros64(s)]
			}
			if v > 0 {
				b.WriteByte('+')
			} else {
				b.WriteByte('-')
			}
		}
		return b.String()
	}
	ones := strings.Repeat("+", n)
	if k <= 16 {
		// Words: products of factors that are constant +1.
		wlp := make([]int64, k+1)
		var words []uint64
		for set := uint64(1); set < 1<<k; set++ {
			if col(set) == ones {
				wlp[bits.OnesCount64(set)]++
				words = append(words, set)
			}
		}
		sortFactorSets(words)
		var names []string
		for _, w := range words {
			names = append(names, d.word(w))
		}
		got, _ := d.DefiningRelation()
		if !slices.Equal(got, nonNil(names)) {
			t.Errorf("%v: defining relation %v, brute force %v", d.Generators(), got, names)
		}
		last := k
		for last >= 3 && wlp[last] == 0 {
			last--
		}
		want := []int64{}
		if last >= 3 {
			want = wlp[3 : last+1]
		}
		if got := d.WLP(); !slices.Equal(got, want) {
			t.Errorf("%v: WLP %v, brute force %v", d.Generators(), got, want)
		}
	}
	// Aliases: effects of order <= 2 with equal columns.
	groups := map[string][]string{}
	var order []string
	add := func(set uint64) {
		c := col(set)
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], d.word(set))
	}
	for i := 0; i < k; i++ {
		add(1 << i)
	}
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			add(1<<i | 1<<j)
		}
	}
	var chains, clear []string
	for _, c := range order {
		g := groups[c]
		switch {
		case len(g) > 1:
			chains = append(chains, strings.Join(g, "="))
		case len(g[0]) > 1 || (k > 50 && strings.Count(g[0], "F") > 1):
			clear = append(clear, g[0])
		}
	}
	gotChains := d.Aliases()
	sort.Strings(chains)
	sortedGot := slices.Clone(gotChains)
	sort.Strings(sortedGot)
	if !slices.Equal(sortedGot, chains) {
		t.Errorf("%v: aliases %v, brute force %v", d.Generators(), gotChains, chains)
	}
	gotClear := d.Clear2FIs()
	sort.Strings(clear)
	sortedClear := slices.Clone(gotClear)
	sort.Strings(sortedClear)
	if !slices.Equal(sortedClear, nonNil(clear)) {
		t.Errorf("%v: clear 2FIs %v, brute force %v", d.Generators(), gotClear, clear)
	}
}

// The search results, checked against the brute-force analysis.
func TestDesignSearchedDesignsAnalysis(t *testing.T) {
	for _, c := range [][2]int{{5, 8}, {6, 8}, {7, 8}, {9, 16}, {11, 16}, {8, 32}, {10, 32}, {16, 32}, {9, 64}, {12, 64}} {
		d, err := MinimumAberration(c[0], c[1], 0)
		if err != nil {
			t.Fatal(err)
		}
		checkIndependently(t, d)
	}
}

func TestDesignFactorNames(t *testing.T) {
	if got := strings.Join(FactorNames(10), ""); got != "ABCDEFGHJK" {
		t.Errorf("FactorNames(10) = %s", got)
	}
	n50 := FactorNames(50)
	if n50[24] != "Z" || n50[25] != "a" || n50[33] != "j" || n50[49] != "z" {
		t.Errorf("FactorNames(50) = %v", n50)
	}
	if n := FactorNames(51); n[0] != "F1" || n[50] != "F51" {
		t.Errorf("FactorNames(51) = %v", n)
	}
}

func TestDesignFromGeneratorsErrors(t *testing.T) {
	tests := []struct {
		k     int
		gens  []string
		field string
		msg   string
	}{
		{6, []string{"E=ABX", "F=ABD"}, "generators", `unknown factor "X"`},
		{6, []string{"E=ABC", "Z=ABD"}, "generators", `unknown factor "Z"`},
		{6, []string{"E=ABC", "D=ABC"}, "generators", "D is a base factor"},
		{6, []string{"E=ABC", "F=ABC"}, "generators", "E and F have the same generator ABC"},
		{6, []string{"E=ABC", "F=A"}, "generators", "at least two base factors"},
		{6, []string{"E=ABC", "F=ABE"}, "generators", "E is a generated factor"},
		{6, []string{"E=ABC", "F=AAB"}, "generators", "appears twice"},
		{6, []string{"E=ABC", "E=ABD"}, "generators", "E is given two generators"},
		{6, []string{"E=-ABC", "F=ABD"}, "generators", "signs are not supported"},
		{6, []string{"E=ABC", "4"}, "generators", "column 4 is base factor C"},
		{6, []string{"E=ABC", "16"}, "generators", "outside 1..15"},
		{6, []string{"E=ABC", "x"}, "generators", "neither NAME=WORD"},
		{4, []string{"3", "5", "6"}, "generators", "leave 1 base factors"},
		{64, []string{"E=ABC"}, "factors", "want 1 to 63"},
	}
	for _, tt := range tests {
		_, err := FromGenerators(tt.k, tt.gens)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("FromGenerators(%d, %v): error %v, want an InputError", tt.k, tt.gens, err)
			continue
		}
		if ie.Field != tt.field || !strings.Contains(ie.Problem, tt.msg) {
			t.Errorf("FromGenerators(%d, %v): %v, want field %s and %q", tt.k, tt.gens, err, tt.field, tt.msg)
		}
	}
}

func TestDesignFromGeneratorsForms(t *testing.T) {
	a, err := FromGenerators(7, []string{"G=ACD", "E=ABC", "F=ABD"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromGenerators(7, []string{"7", "11", "13"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Generators(), b.Generators()) || !slices.Equal(a.Generators(), []string{"E=ABC", "F=ABD", "G=ACD"}) {
		t.Errorf("generators %v and %v", a.Generators(), b.Generators())
	}
	// Beyond 50 factors FrF2 names factors F1, F2, ...
	gens := make([]string, 0, 46)
	for i, c := range interactionColumns(6)[:46] {
		gens = append(gens, "F"+strconv.Itoa(7+i)+"="+wordOf(c, FactorNames(52)))
	}
	d, err := FromGenerators(52, gens)
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Generators(); g[0] != "F7=F1F2" || g[45] != gens[45] {
		t.Errorf("generators %v", g)
	}
}

func TestDesignDefiningRelationLarge(t *testing.T) {
	d, err := MinimumAberration(40, 64, 0)
	if err != nil {
		t.Fatal(err)
	}
	words, complete := d.DefiningRelation()
	if complete || len(words) != 34 {
		t.Errorf("defining relation of 2^(40-34): %d words, complete %v; want the 34 generating words", len(words), complete)
	}
	r := d.Report()
	if r.DefiningRelationComplete == nil || *r.DefiningRelationComplete {
		t.Errorf("report does not flag the incomplete defining relation")
	}
}

func TestDesignFullFactorial(t *testing.T) {
	d, err := MinimumAberration(3, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Resolution() != 0 || len(d.WLP()) != 0 || len(d.Aliases()) != 0 || len(d.Clear2FIs()) != 3 || len(d.Generators()) != 0 {
		t.Errorf("full factorial: resolution %d, WLP %v, aliases %v, clear %v", d.Resolution(), d.WLP(), d.Aliases(), d.Clear2FIs())
	}
	want := [][]int{{-1, -1, -1}, {1, -1, -1}, {-1, 1, -1}, {1, 1, -1}, {-1, -1, 1}, {1, -1, 1}, {-1, 1, 1}, {1, 1, 1}}
	if got := d.Matrix(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("matrix %v", got)
	}
	if r := d.Report(); r.Resolution != nil {
		t.Errorf("report resolution %v, want null", *r.Resolution)
	}
}
