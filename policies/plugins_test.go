package policies

import (
	"strings"
	"testing"
	"time"
)

// pluginStudy is a valid study with one plugin of each kind; cases below
// replace parts of it.
const pluginStudy = `id: p
name: P
timezone: Europe/London
seed: "0123456789abcdef"
decision_points:
  - {id: app, kind: app}
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.5
    bounds: [0.1, 0.9]
    probability_source: plugin
    plugin: bandit
outcomes:
  - {name: stress_90m, event: ema, variable: stress, from: 30m, to: 90m}
  - {name: opened, event: engagement, status: opened, from: 0s, to: 1h}
plugins:
  - name: sleep
    kind: enricher
    path: bin/sleep
    checksum: sha256:0000000000000000000000000000000000000000000000000000000000000000
  - name: bandit
    kind: probability
    path: bin/bandit
    checksum_file: SHA256SUMS
    outcome: stress_90m
  - name: alerts
    kind: notifier
    path: bin/alerts
    checksum: 1111111111111111111111111111111111111111111111111111111111111111
crisis:
  text: "Call 116 123."
`

func TestPluginConfigDefaults(t *testing.T) {
	c, err := ParseConfig("s/study.yaml", []byte(pluginStudy))
	if err != nil {
		t.Fatal(err)
	}
	sleep, _ := c.Plugin("sleep")
	bandit, _ := c.Plugin("bandit")
	alerts, _ := c.Plugin("alerts")
	if sleep.Timeout.Duration != 200*time.Millisecond || sleep.Fallback != FallbackOmit {
		t.Errorf("enricher defaults %+v", sleep)
	}
	if bandit.Fallback != FallbackDefaultProbability {
		t.Errorf("provider fallback %q", bandit.Fallback)
	}
	if alerts.Timeout.Duration != 5*time.Second || alerts.Fallback != FallbackDeadLetter || !alerts.Notifies("safety") || alerts.Notifies("deliver") ||
		alerts.Retry.Attempts != 8 || alerts.Retry.Backoff.Duration != time.Second {
		t.Errorf("notifier defaults %+v", alerts)
	}
	if got := sleep.ExecutablePath("/studies/p"); got != "/studies/p/bin/sleep" {
		t.Errorf("executable path %s", got)
	}
}

func TestPluginConfigErrorsPointAtLines(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown kind", "kind: enricher", "kind: scorer", `s/study.yaml:20: plugin kind "scorer" must be enricher, probability or notifier`},
		{"no checksum", "    checksum: sha256:0000000000000000000000000000000000000000000000000000000000000000\n", "",
			`s/study.yaml:19: plugin "sleep" needs checksum: sha256:<hex> (or checksum_file): an unpinned executable is never run`},
		{"short checksum", "checksum: sha256:0000000000000000000000000000000000000000000000000000000000000000", "checksum: sha256:abc",
			`s/study.yaml:22: plugin "sleep": checksum "sha256:abc" must be sha256: followed by 64 hex digits`},
		{"both checksums", "checksum_file: SHA256SUMS", "checksum_file: SHA256SUMS\n    checksum: sha256:0000000000000000000000000000000000000000000000000000000000000000",
			`s/study.yaml:27: plugin "bandit": give checksum or checksum_file, not both`},
		{"no path", "    path: bin/alerts\n", "", `s/study.yaml:28: plugin "alerts" needs a path`},
		{"bad name", "name: sleep", "name: Sleep-Debt", `s/study.yaml:19: plugin name "Sleep-Debt" must be a lower-case identifier`},
		{"duplicate", "name: alerts", "name: sleep", `s/study.yaml:28: plugin "sleep" is declared twice`},
		{"timeout", "path: bin/sleep", "path: bin/sleep\n    timeout: 2m", `s/study.yaml:22: plugin "sleep": timeout 2m0s must be from 1ms to 1m`},
		{"bad fallback", "path: bin/bandit", "path: bin/bandit\n    fallback: omit", `s/study.yaml:26: fallback "omit" of a probability plugin must be default_probability`},
		{"defaults without values", "path: bin/sleep", "path: bin/sleep\n    fallback: defaults", `s/study.yaml:22: fallback: defaults needs defaults`},
		{"outcome unknown", "outcome: stress_90m", "outcome: mood", `s/study.yaml:27: outcome "mood" is not one of the study's outcomes`},
		{"outcome engagement", "outcome: stress_90m", "outcome: opened", `s/study.yaml:27: outcome "opened" is measured from engagement events`},
		{"notify", "path: bin/alerts", "path: bin/alerts\n    notify: [safety, everything]", `s/study.yaml:31: notify "everything" must be safety, deliver or policy_error`},
		{"NaN default", "path: bin/sleep", "path: bin/sleep\n    fallback: defaults\n    defaults: {debt: .nan}", `s/study.yaml:23: defaults must be plain values`},
		{"retry on enricher", "path: bin/sleep", "path: bin/sleep\n    retry: {attempts: 3}", `s/study.yaml:22: retry applies to notifier plugins only`},
		{"source without plugin", "    plugin: bandit\n", "", `s/study.yaml:13: probability_source: plugin needs plugin: <name of a probability plugin>`},
		{"plugin undeclared", "plugin: bandit", "plugin: oracle", `s/study.yaml:14: plugin "oracle" is not declared under plugins:`},
		{"plugin of wrong kind", "plugin: bandit", "plugin: sleep", `s/study.yaml:14: plugin "sleep" is of kind enricher; probability_source: plugin needs a probability plugin`},
		{"plugin without source", "probability_source: plugin", "probability_source: fixed", `s/study.yaml:14: plugin applies only with probability_source: plugin`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(pluginStudy, tc.old, tc.new, 1)
			if src == pluginStudy {
				t.Fatalf("case does not change the study")
			}
			_, err := ParseConfig("s/study.yaml", []byte(src))
			if err == nil {
				t.Fatalf("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%s\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
}
