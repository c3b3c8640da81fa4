package simulate

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Cohort describes the synthetic participants: their daily rhythms, how
// they use their phone, engage and respond, and how interventions change
// what they report. Every field has a documented default (DefaultCohort and
// docs/simulate.md); a cohort.yaml sets only what it wants to change.
type Cohort struct {
	// Timezone is the participants' IANA zone; empty means the study's.
	Timezone string `yaml:"timezone" json:"timezone,omitempty"`
	// Strata gives the values of each stratum the study declares; participant
	// i gets value i mod len(values). Default: ["a", "b"] for every stratum.
	Strata map[string][]string `yaml:"strata" json:"strata,omitempty"`
	// Stress and Mood are the 0-10 self-reported levels (stress: higher is
	// worse; mood: higher is better).
	Stress Rhythm `yaml:"stress" json:"stress"`
	Mood   Rhythm `yaml:"mood" json:"mood"`
	// Sleep sets bed and wake times and sleep quality.
	Sleep Sleep `yaml:"sleep" json:"sleep"`
	// Driving sets commutes and other trips (the policy sees driving).
	Driving Driving `yaml:"driving" json:"driving"`
	// Phone sets how often the phone is in use at a decision point.
	Phone Phone `yaml:"phone" json:"phone"`
	// Engagement sets how participants respond to prompts and self-report
	// requests.
	Engagement Engagement `yaml:"engagement" json:"engagement"`
	// Disengagement sets the participants who drift away.
	Disengagement Disengagement `yaml:"disengagement" json:"disengagement"`
	// Safety sets how often a self-report or questionnaire signals risk.
	Safety Safety `yaml:"safety" json:"safety"`
	// Effects are the true effects of a delivered intervention on the next
	// self-report.
	Effects Effects `yaml:"effects" json:"effects"`
	// Clock sets outages of the trial clock (the engine, not the people).
	Clock Clock `yaml:"clock" json:"clock"`
}

// Clock sets Outage, the probability that the trial clock is down when a
// participant's schedule falls due: it stays down for the study's
// decision_ttl and a minute, so a point due then is recorded missed (past
// its window) rather than decided.
type Clock struct {
	Outage float64 `yaml:"outage" json:"outage"`
}

// Rhythm is a 0-10 self-reported level with a daily cycle. A person's usual
// level is drawn once (Mean, BetweenSD); each day shifts it by an AR(1)
// amount (DaySD, DayCorr); within the day it follows a cosine of
// Amplitude peaking at PeakHour; each report adds NoiseSD of noise. Reports
// are rounded to whole numbers and clipped to 0-10.
type Rhythm struct {
	Mean      float64 `yaml:"mean" json:"mean"`
	BetweenSD float64 `yaml:"between_sd" json:"between_sd"`
	Amplitude float64 `yaml:"amplitude" json:"amplitude"`
	PeakHour  float64 `yaml:"peak_hour" json:"peak_hour"`
	DaySD     float64 `yaml:"day_sd" json:"day_sd"`
	DayCorr   float64 `yaml:"day_corr" json:"day_corr"`
	NoiseSD   float64 `yaml:"noise_sd" json:"noise_sd"`
	// PerSleepPoint is added to the day's level for each point of last
	// night's sleep quality below 5 (positive for stress, negative for mood).
	PerSleepPoint float64 `yaml:"per_sleep_point" json:"per_sleep_point"`
}

// Sleep sets each person's bed and wake times (participant-local HH:MM,
// varying by SD minutes a night) and the sleep quality they report on
// waking (0-10).
type Sleep struct {
	Bedtime     string  `yaml:"bedtime" json:"bedtime"`
	Wake        string  `yaml:"wake" json:"wake"`
	SDMinutes   float64 `yaml:"sd_minutes" json:"sd_minutes"`
	QualityMean float64 `yaml:"quality_mean" json:"quality_mean"`
	QualitySD   float64 `yaml:"quality_sd" json:"quality_sd"`
}

// Driving sets who drives when. Commuters drive to work and back on
// weekdays, starting around MorningStart and EveningStart (± JitterMinutes)
// for DurationMinutes; anyone may make TripsPerDay other trips between
// 10:00 and 20:00.
type Driving struct {
	Commuters       float64 `yaml:"commuters" json:"commuters"`
	MorningStart    string  `yaml:"morning_start" json:"morning_start"`
	EveningStart    string  `yaml:"evening_start" json:"evening_start"`
	DurationMinutes float64 `yaml:"duration_minutes" json:"duration_minutes"`
	JitterMinutes   float64 `yaml:"jitter_minutes" json:"jitter_minutes"`
	TripsPerDay     float64 `yaml:"trips_per_day" json:"trips_per_day"`
}

// Phone sets the probability that the phone is in use at a decision point
// (a prompt that arrives while it is in use is opened more often), and the
// probability that a pushed delivery never reaches it (switched off, out of
// signal, notifications blocked): a channel sent it, but the app never
// reports it delivered and the participant never sees it.
type Phone struct {
	InUse       float64 `yaml:"in_use" json:"in_use"`
	Unreachable float64 `yaml:"unreachable" json:"unreachable"`
}

// Engagement sets each person's probabilities, drawn once around the
// cohort's means (± Spread, uniformly) and clipped to [0, 1].
type Engagement struct {
	// Open is P(a delivered prompt is opened within the hour).
	Open float64 `yaml:"open" json:"open"`
	// InUseBoost is added to Open when the phone is in use.
	InUseBoost float64 `yaml:"in_use_boost" json:"in_use_boost"`
	// Complete is P(an opened prompt is completed); otherwise it is dismissed.
	Complete float64 `yaml:"complete" json:"complete"`
	// Rate is P(a completed prompt is rated).
	Rate float64 `yaml:"rate" json:"rate"`
	// Respond is P(answering a self-report request).
	Respond float64 `yaml:"respond" json:"respond"`
	// Spread is the half-width of the between-person variation.
	Spread float64 `yaml:"spread" json:"spread"`
	// ReportDelay is how long after a decision point the follow-up
	// self-report request is answered (on average; ± a third of it).
	ReportDelay policies.Duration `yaml:"report_delay" json:"report_delay"`
	// Snooze is P(snoozing prompts after dismissing one), for SnoozeFor.
	Snooze    float64           `yaml:"snooze" json:"snooze"`
	SnoozeFor policies.Duration `yaml:"snooze_for" json:"snooze_for"`
}

// Disengagement: a Fraction of participants drift away from a day drawn
// uniformly in [FromDay, the last day]; afterwards their open and respond
// probabilities are multiplied by Factor, and an OptOut share of them opt
// out of prompts that day.
type Disengagement struct {
	Fraction float64 `yaml:"fraction" json:"fraction"`
	FromDay  int     `yaml:"from_day" json:"from_day"`
	Factor   float64 `yaml:"factor" json:"factor"`
	OptOut   float64 `yaml:"opt_out" json:"opt_out"`
}

// Safety: a self-report carries an explicit risk answer (ema risk = 1) with
// probability RiskReport; a PHQ-9 is completed every PHQ9EveryDays days
// (0: never), with a positive item 9 with probability Item9.
type Safety struct {
	RiskReport    float64 `yaml:"risk_report" json:"risk_report"`
	PHQ9EveryDays int     `yaml:"phq9_every_days" json:"phq9_every_days"`
	Item9         float64 `yaml:"item9" json:"item9"`
}

// Effects are added to the first self-report within Window after a
// delivered intervention (the true proximal effect of delivery). Components
// add more when a factor (within or between) is at its second level in that
// delivered decision.
type Effects struct {
	Window     policies.Duration `yaml:"window" json:"window"`
	Stress     float64           `yaml:"stress" json:"stress"`
	Mood       float64           `yaml:"mood" json:"mood"`
	Components map[string]Effect `yaml:"components" json:"components,omitempty"`
}

// Effect is a factor level's extra effect on stress and mood.
type Effect struct {
	Stress float64 `yaml:"stress" json:"stress"`
	Mood   float64 `yaml:"mood" json:"mood"`
}

// DefaultCohort is the cohort used without a cohort.yaml, and the base a
// cohort.yaml changes.
func DefaultCohort() Cohort {
	return Cohort{
		Stress: Rhythm{Mean: 4.5, BetweenSD: 1.2, Amplitude: 1.2, PeakHour: 17, DaySD: 0.8, DayCorr: 0.5, NoiseSD: 1.2, PerSleepPoint: 0.3},
		Mood:   Rhythm{Mean: 6, BetweenSD: 1.2, Amplitude: 0.8, PeakHour: 12, DaySD: 0.7, DayCorr: 0.5, NoiseSD: 1.0, PerSleepPoint: -0.25},
		Sleep:  Sleep{Bedtime: "23:00", Wake: "07:00", SDMinutes: 40, QualityMean: 6, QualitySD: 1.8},
		Driving: Driving{Commuters: 0.4, MorningStart: "08:10", EveningStart: "17:15", DurationMinutes: 35,
			JitterMinutes: 25, TripsPerDay: 0.4},
		Phone: Phone{InUse: 0.3, Unreachable: 0.03},
		Engagement: Engagement{Open: 0.55, InUseBoost: 0.2, Complete: 0.6, Rate: 0.3, Respond: 0.75, Spread: 0.15,
			ReportDelay: policies.Duration{Duration: time.Hour}, Snooze: 0.05, SnoozeFor: policies.Duration{Duration: 2 * time.Hour}},
		Disengagement: Disengagement{Fraction: 0.2, FromDay: 14, Factor: 0.25, OptOut: 0.3},
		Safety:        Safety{RiskReport: 0.0005, PHQ9EveryDays: 14, Item9: 0.02},
		Effects:       Effects{Window: policies.Duration{Duration: 2 * time.Hour}, Stress: -0.3, Mood: 0.2},
	}
}

// CohortError is a problem in a cohort file, with its position and key.
type CohortError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *CohortError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// CohortErrors is every problem found in a cohort file.
type CohortErrors []*CohortError

func (es CohortErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadCohort reads a cohort file over DefaultCohort.
func LoadCohort(path string) (Cohort, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Cohort{}, fmt.Errorf("reading cohort: %w", err)
	}
	return ParseCohort(path, data)
}

var lineRe = regexp.MustCompile(`line (\d+): (.*)`)

// ParseCohort decodes a cohort file over DefaultCohort and validates it.
// Errors are CohortErrors with file:line and the key.
func ParseCohort(file string, data []byte) (Cohort, error) {
	c := DefaultCohort()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return c, yamlErrors(file, err)
	}
	lines := map[string]int{}
	if len(root.Content) > 0 {
		indexLines(root.Content[0], "", lines)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, yamlErrors(file, err)
		}
	}
	if errs := c.validate(file, lines); len(errs) > 0 {
		return c, errs
	}
	return c, nil
}

func yamlErrors(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out CohortErrors
	for _, m := range msgs {
		e := &CohortError{File: file, Msg: m}
		if s := lineRe.FindStringSubmatch(m); s != nil {
			e.Line, _ = strconv.Atoi(s[1])
			e.Msg = s[2]
		}
		out = append(out, e)
	}
	return out
}

// indexLines records the line of every key by path ("engagement.open").
func indexLines(n *yaml.Node, path string, out map[string]int) {
	if _, ok := out[path]; !ok {
		out[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			out[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

type validator struct {
	file  string
	lines map[string]int
	errs  CohortErrors
}

func (v *validator) at(key, format string, args ...any) {
	line := 0
	for p := key; ; {
		if l, ok := v.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	v.errs = append(v.errs, &CohortError{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) prob(key string, x float64) {
	if x < 0 || x > 1 {
		v.at(key, "%g is not a probability: use a number from 0 to 1", x)
	}
}

func (v *validator) nonNeg(key string, x float64) {
	if x < 0 {
		v.at(key, "%g must not be negative", x)
	}
}

func (v *validator) level(key string, x float64) {
	if x < 0 || x > 10 {
		v.at(key, "%g is outside the 0-10 scale of self-reports", x)
	}
}

func (v *validator) clock(key, s string) {
	if _, err := trial.ParseClock(s); err != nil {
		v.at(key, "%q must be HH:MM (24-hour clock)", s)
	}
}

func (c *Cohort) validate(file string, lines map[string]int) CohortErrors {
	v := &validator{file: file, lines: lines}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "Local" {
			v.at("timezone", "%q is not an IANA time zone such as Europe/London", c.Timezone)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Strata)) {
		vals := c.Strata[name]
		if len(vals) == 0 {
			v.at("strata."+name, "give at least one value")
		}
		for i, s := range vals {
			if s == "" || len(s) > 64 || strings.ContainsAny(s, "|=") {
				v.at(fmt.Sprintf("strata.%s[%d]", name, i), "stratum values are 1-64 characters without | or =")
			}
		}
	}
	for _, r := range []struct {
		name string
		r    *Rhythm
	}{{"stress", &c.Stress}, {"mood", &c.Mood}} {
		v.level(r.name+".mean", r.r.Mean)
		v.nonNeg(r.name+".between_sd", r.r.BetweenSD)
		v.nonNeg(r.name+".amplitude", r.r.Amplitude)
		if r.r.PeakHour < 0 || r.r.PeakHour >= 24 {
			v.at(r.name+".peak_hour", "%g must be an hour from 0 to 23.99", r.r.PeakHour)
		}
		v.nonNeg(r.name+".day_sd", r.r.DaySD)
		if r.r.DayCorr < 0 || r.r.DayCorr >= 1 {
			v.at(r.name+".day_corr", "%g must be in [0, 1)", r.r.DayCorr)
		}
		v.nonNeg(r.name+".noise_sd", r.r.NoiseSD)
	}
	v.clock("sleep.bedtime", c.Sleep.Bedtime)
	v.clock("sleep.wake", c.Sleep.Wake)
	v.nonNeg("sleep.sd_minutes", c.Sleep.SDMinutes)
	v.level("sleep.quality_mean", c.Sleep.QualityMean)
	v.nonNeg("sleep.quality_sd", c.Sleep.QualitySD)
	v.prob("driving.commuters", c.Driving.Commuters)
	v.clock("driving.morning_start", c.Driving.MorningStart)
	v.clock("driving.evening_start", c.Driving.EveningStart)
	if c.Driving.DurationMinutes <= 0 || c.Driving.DurationMinutes > 600 {
		v.at("driving.duration_minutes", "%g must be between 1 and 600", c.Driving.DurationMinutes)
	}
	v.nonNeg("driving.jitter_minutes", c.Driving.JitterMinutes)
	if c.Driving.TripsPerDay < 0 || c.Driving.TripsPerDay > 10 {
		v.at("driving.trips_per_day", "%g must be between 0 and 10", c.Driving.TripsPerDay)
	}
	v.prob("phone.in_use", c.Phone.InUse)
	v.prob("phone.unreachable", c.Phone.Unreachable)
	v.prob("clock.outage", c.Clock.Outage)
	e := &c.Engagement
	v.prob("engagement.open", e.Open)
	v.prob("engagement.in_use_boost", e.InUseBoost)
	v.prob("engagement.complete", e.Complete)
	v.prob("engagement.rate", e.Rate)
	v.prob("engagement.respond", e.Respond)
	v.prob("engagement.spread", e.Spread)
	if e.ReportDelay.Duration <= 0 || e.ReportDelay.Duration > 12*time.Hour {
		v.at("engagement.report_delay", "%s must be a duration from 1m to 12h, such as 60m", e.ReportDelay.Duration)
	}
	v.prob("engagement.snooze", e.Snooze)
	if e.SnoozeFor.Duration < time.Minute || e.SnoozeFor.Duration > 30*24*time.Hour {
		v.at("engagement.snooze_for", "%s must be a duration from 1m to 720h", e.SnoozeFor.Duration)
	}
	v.prob("disengagement.fraction", c.Disengagement.Fraction)
	if c.Disengagement.FromDay < 0 {
		v.at("disengagement.from_day", "%d must not be negative", c.Disengagement.FromDay)
	}
	v.prob("disengagement.factor", c.Disengagement.Factor)
	v.prob("disengagement.opt_out", c.Disengagement.OptOut)
	v.prob("safety.risk_report", c.Safety.RiskReport)
	if c.Safety.PHQ9EveryDays < 0 {
		v.at("safety.phq9_every_days", "%d must not be negative (0: no questionnaires)", c.Safety.PHQ9EveryDays)
	}
	v.prob("safety.item9", c.Safety.Item9)
	if c.Effects.Window.Duration <= 0 {
		v.at("effects.window", "%s must be a positive duration such as 2h", c.Effects.Window.Duration)
	}
	for _, x := range []struct {
		key string
		val float64
	}{{"effects.stress", c.Effects.Stress}, {"effects.mood", c.Effects.Mood}} {
		if x.val < -10 || x.val > 10 {
			v.at(x.key, "%g is beyond the 0-10 scale", x.val)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Effects.Components)) {
		ef := c.Effects.Components[name]
		if ef.Stress < -10 || ef.Stress > 10 || ef.Mood < -10 || ef.Mood > 10 {
			v.at("effects.components."+name, "effects are beyond the 0-10 scale")
		}
	}
	return v.errs
}

// checkAgainst reports cohort settings that do not fit the study: strata it
// does not declare and component effects of factors it does not have.
func (c *Cohort) checkAgainst(cfg *policies.Config) error {
	var errs []string
	declared := map[string]bool{}
	for _, s := range cfg.Strata {
		declared[s] = true
	}
	for name := range c.Strata {
		if !declared[name] {
			errs = append(errs, fmt.Sprintf("cohort strata.%s: study %s declares no such stratum (declared: %v)", name, cfg.ID, cfg.Strata))
		}
	}
	for name := range c.Effects.Components {
		if _, ok := cfg.Factor(name); !ok {
			errs = append(errs, fmt.Sprintf("cohort effects.components.%s: study %s has no factor %q", name, cfg.ID, name))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}
