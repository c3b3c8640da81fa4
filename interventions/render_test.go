package interventions

import (
	"reflect"
	"strings"
	"testing"
)

const renderDims = "framing: [gain, loss]\nreminder: [off, on]\nbooster: [off, on]\ndose: [low, high]\n"

// renderEntry exercises every kind of variant override.
const renderEntry = `id: r
title: Render test
technique: grounding
targets: [stress, low_mood]
duration_s: 90
body: "Body {minutes} min for {target} this {time_of_day}."
steps:
  - "One."
  - "Two {minutes}."
variants:
  framing:
    gain: {prefix: "Gain."}
    loss: {prefix: "Loss {time_of_day}."}
  reminder:
    off: {}
    on: {suffix: "Reminder."}
  booster:
    off: {}
    on: {body: "Booster body for {target}.", suffix: "Booster suffix."}
  dose:
    low: {duration_s: 30, steps: ["Low one.", "Low two {minutes}."]}
    high: {duration_s: 61, steps: ["High one.", "High two.", "High three {minutes}."]}
`

func renderCatalogue(t testing.TB) *Intervention {
	t.Helper()
	c, err := Load(catalogueFS(ptr(renderDims), map[string]string{"r.yaml": renderEntry}), "cat")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	iv, _ := c.Get("r")
	return iv
}

func TestRender(t *testing.T) {
	iv := renderCatalogue(t)
	morning := Vars{TimeOfDay: "morning", Target: "stress"}
	tests := []struct {
		name      string
		levels    map[string]string
		vars      Vars
		body      string
		steps     []string
		durationS int
	}{
		{
			name: "base", vars: morning,
			body:  "Body 2 min for stress this morning.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "prefix", levels: map[string]string{"framing": "gain"}, vars: morning,
			body:  "Gain. Body 2 min for stress this morning.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "prefix with a variable and a suffix", levels: map[string]string{"framing": "loss", "reminder": "on"},
			vars:  Vars{TimeOfDay: "evening", Target: "stress"},
			body:  "Loss evening. Body 2 min for stress this evening. Reminder.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "empty variant", levels: map[string]string{"reminder": "off", "booster": "off"}, vars: morning,
			body:  "Body 2 min for stress this morning.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "body override and suffixes in dimension order", levels: map[string]string{"reminder": "on", "booster": "on"}, vars: morning,
			body:  "Booster body for stress. Booster suffix. Reminder.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "steps and duration override, minutes rounded up to at least 1", levels: map[string]string{"dose": "low"}, vars: morning,
			body:  "Body 1 min for stress this morning.",
			steps: []string{"Low one.", "Low two 1."}, durationS: 30,
		},
		{
			name: "61 seconds are 2 minutes", levels: map[string]string{"dose": "high"}, vars: morning,
			body:  "Body 2 min for stress this morning.",
			steps: []string{"High one.", "High two.", "High three 2."}, durationS: 61,
		},
		{
			name:   "every dimension",
			levels: map[string]string{"framing": "gain", "reminder": "on", "booster": "on", "dose": "high"},
			vars:   Vars{TimeOfDay: "night", Target: "low_mood"},
			body:   "Gain. Booster body for low mood. Booster suffix. Reminder.",
			steps:  []string{"High one.", "High two.", "High three 2."}, durationS: 61,
		},
		{
			name: "unknown level of a known dimension falls back to the base", levels: map[string]string{"framing": "neutral"}, vars: morning,
			body:  "Body 2 min for stress this morning.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "dimension the intervention does not declare is ignored", levels: map[string]string{"colour": "blue", "framing": "gain"}, vars: morning,
			body:  "Gain. Body 2 min for stress this morning.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "target in words", vars: Vars{TimeOfDay: "afternoon", Target: "low mood"},
			body:  "Body 2 min for low mood this afternoon.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "target the intervention does not address uses its first target", vars: Vars{TimeOfDay: "afternoon", Target: "sleep"},
			body:  "Body 2 min for stress this afternoon.",
			steps: []string{"One.", "Two 2."}, durationS: 90,
		},
		{
			name: "unknown time of day and no target",
			vars: Vars{TimeOfDay: "teatime"},
			body: "Body 2 min for stress this day.", steps: []string{"One.", "Two 2."}, durationS: 90,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := iv.Render(tt.levels, tt.vars)
			want := Rendered{ID: "r", Title: "Render test", Body: tt.body, Steps: tt.steps, DurationS: tt.durationS}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Render:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMinutes(t *testing.T) {
	for _, tt := range []struct{ seconds, minutes int }{
		{0, 1}, {1, 1}, {30, 1}, {59, 1}, {60, 1}, {61, 2}, {119, 2}, {120, 2}, {121, 3}, {1800, 30},
	} {
		if got := minutes(tt.seconds); got != tt.minutes {
			t.Errorf("minutes(%d) = %d, want %d", tt.seconds, got, tt.minutes)
		}
	}
}

// TestRenderHandBuilt checks that an Intervention built in code, without
// Load, renders like a loaded one.
func TestRenderHandBuilt(t *testing.T) {
	loaded := renderCatalogue(t)
	built := &Intervention{
		ID: loaded.ID, Title: loaded.Title, Technique: loaded.Technique,
		Targets: loaded.Targets, Steps: loaded.Steps, DurationS: loaded.DurationS,
		Body: loaded.Body, Variants: loaded.Variants,
	}
	for _, levels := range allLevels(wantDimensions) {
		for _, tod := range timesOfDay {
			vars := Vars{TimeOfDay: tod, Target: "low_mood"}
			if got, want := built.Render(levels, vars), loaded.Render(levels, vars); !reflect.DeepEqual(got, want) {
				t.Fatalf("%v %q: hand-built renders %+v, loaded %+v", levels, tod, got, want)
			}
		}
	}
}

func TestRenderReturnsFreshSteps(t *testing.T) {
	iv := renderCatalogue(t)
	r := iv.Render(nil, Vars{})
	r.Steps[0] = "changed"
	if again := iv.Render(nil, Vars{}); again.Steps[0] != "One." {
		t.Errorf("changing a rendering's steps changed the intervention: %q", again.Steps[0])
	}
}

func TestRenderAllocations(t *testing.T) {
	c := embeddedCatalogue(t)
	iv, _ := c.Get("box-breathing")
	levels := map[string]string{"framing": "gain", "reminder": "on", "booster": "on", "dose": "high"}
	vars := Vars{TimeOfDay: "evening", Target: "anxiety"}
	// The body and the steps slice; these steps use no variables.
	if got := testing.AllocsPerRun(100, func() { iv.Render(levels, vars) }); got > 2 {
		t.Errorf("Render allocates %v times, want at most 2", got)
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		text     string
		vars     bool
		problems []string
	}{
		{"", false, nil},
		{"plain text", false, nil},
		{"{minutes} min", true, nil},
		{"{time_of_day}{target}{minutes}", true, nil},
		{"{ minutes }", false, []string{`unknown template variable " minutes "`}},
		{"{Minutes}", false, []string{`unknown template variable "Minutes"`}},
		{"{}", false, []string{`unknown template variable ""`}},
		{"a {b", false, []string{`unclosed "{"`}},
		{"a } b", false, []string{`unmatched "}"`}},
		{"{{minutes}}", false, []string{`unknown template variable "{minutes"`, `unmatched "}"`}},
	}
	for _, tt := range tests {
		tpl, problems := parseTemplate(tt.text)
		if tpl.hasVars != tt.vars || !reflect.DeepEqual(problems, tt.problems) {
			t.Errorf("parseTemplate(%q) = vars %v, problems %q; want %v, %q", tt.text, tpl.hasVars, problems, tt.vars, tt.problems)
		}
	}
}

// FuzzParseTemplate checks that any text parses without panicking, that a
// text without problems renders with no braces left, and that a text without
// variables renders unchanged.
func FuzzParseTemplate(f *testing.F) {
	for _, seed := range []string{"", "plain", "{minutes} min", "{target}{time_of_day}", "{", "}", "{{x}}", "a {minutes", "é {target} ü"} {
		f.Add(seed)
	}
	vals := &values{minutes: "3", timeOfDay: "evening", target: "low mood"}
	f.Fuzz(func(t *testing.T, text string) {
		tpl, problems := parseTemplate(text)
		got := tpl.render(vals)
		if len(problems) == 0 && strings.ContainsAny(got, "{}") {
			t.Errorf("parseTemplate(%q) reported no problems but renders %q", text, got)
		}
		if !tpl.hasVars && got != text {
			t.Errorf("parseTemplate(%q) has no variables but renders %q", text, got)
		}
		if tpl.empty() != (text == "") {
			t.Errorf("parseTemplate(%q).empty() = %v", text, tpl.empty())
		}
	})
}

func BenchmarkRender(b *testing.B) {
	c := embeddedCatalogue(b)
	levels := map[string]string{"framing": "loss", "reminder": "on", "booster": "off", "dose": "high"}
	vars := Vars{TimeOfDay: "evening", Target: "stress"}
	for _, id := range []string{"box-breathing", "start-small"} {
		iv, _ := c.Get(id)
		b.Run(id, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				iv.Render(levels, vars)
			}
		})
	}
}
