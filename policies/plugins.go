package policies

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Plugin kinds (docs/plugins.md).
const (
	PluginEnricher    = "enricher"
	PluginProbability = "probability"
	PluginNotifier    = "notifier"
)

// Plugin fallbacks: what a decision uses when a plugin call fails or
// misses its deadline.
const (
	// FallbackDefaultProbability (probability providers): the factor's
	// declared probability.
	FallbackDefaultProbability = "default_probability"
	// FallbackOmit (enrichers): input.derived.<plugin> is left out.
	FallbackOmit = "omit"
	// FallbackDefaults (enrichers): input.derived.<plugin> is the plugin's
	// declared defaults.
	FallbackDefaults = "defaults"
	// FallbackDeadLetter (notifiers): retried with backoff, then written to
	// the dead-letter file.
	FallbackDeadLetter = "dead_letter"
)

// PluginConfig declares one out-of-process plugin of a study.
type PluginConfig struct {
	// Name is how the study refers to the plugin (input.derived.<name>,
	// a factor's plugin: <name>); a lower-case identifier.
	Name string `yaml:"name" json:"name"`
	// Kind is enricher, probability or notifier.
	Kind string `yaml:"kind" json:"kind"`
	// Path is the plugin's executable, relative to the study's folder (or
	// absolute).
	Path string `yaml:"path" json:"path"`
	// Checksum is the executable's SHA-256 ("sha256:<64 hex digits>"); the
	// plugin is refused if the file does not match.
	Checksum string `yaml:"checksum" json:"checksum,omitempty"`
	// ChecksumFile, instead of Checksum, names a sha256sum-format file
	// (relative to the study's folder) holding the executable's checksum
	// under its file name, such as the SHA256SUMS that make plugins writes.
	ChecksumFile string `yaml:"checksum_file" json:"checksum_file,omitempty"`
	// Timeout is the deadline of one call (default 200ms; notifiers 5s).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Fallback is what applies when a call fails: default_probability
	// (probability), omit or defaults (enricher), dead_letter (notifier).
	Fallback string `yaml:"fallback" json:"fallback"`
	// Defaults are an enricher's derived values under fallback: defaults.
	Defaults map[string]any `yaml:"defaults" json:"defaults,omitempty"`
	// Outcome names the study outcome (an ema or context outcome) whose
	// values are sent to a probability provider so that it can learn.
	Outcome string `yaml:"outcome" json:"outcome,omitempty"`
	// Notify lists the decisions a notifier receives: safety (default),
	// deliver, and policy_error (the alert that the policy failed and the
	// study's fail-safe answered).
	Notify []string `yaml:"notify" json:"notify,omitempty"`
	// Retry bounds a notifier's redelivery.
	Retry RetryConfig `yaml:"retry" json:"retry"`
	// Config is passed to the plugin as JSON when it starts.
	Config map[string]any `yaml:"config" json:"config,omitempty"`
}

// RetryConfig is a notifier's redelivery policy: up to Attempts deliveries,
// Backoff apart at first, doubling up to MaxBackoff.
type RetryConfig struct {
	Attempts   int      `yaml:"attempts" json:"attempts"`
	Backoff    Duration `yaml:"backoff" json:"backoff"`
	MaxBackoff Duration `yaml:"max_backoff" json:"max_backoff"`
}

// Plugin returns the named plugin.
func (c *Config) Plugin(name string) (*PluginConfig, bool) {
	for i := range c.Plugins {
		if c.Plugins[i].Name == name {
			return &c.Plugins[i], true
		}
	}
	return nil, false
}

// ExecutablePath is the plugin's executable, resolved against the study's
// folder.
func (p *PluginConfig) ExecutablePath(studyDir string) string {
	if filepath.IsAbs(p.Path) {
		return p.Path
	}
	return filepath.Join(studyDir, p.Path)
}

// NotifyPolicyError is the notify value of the fail-safe alert.
const NotifyPolicyError = "policy_error"

// Notifies reports whether a notifier receives decisions of this action.
func (p *PluginConfig) Notifies(action string) bool {
	for _, a := range p.Notify {
		if a == action {
			return true
		}
	}
	return false
}

func (p *PluginConfig) setDefaults() {
	if p.Timeout.Duration == 0 {
		p.Timeout.Duration = 200 * time.Millisecond
		if p.Kind == PluginNotifier {
			p.Timeout.Duration = 5 * time.Second
		}
	}
	if p.Fallback == "" {
		switch p.Kind {
		case PluginProbability:
			p.Fallback = FallbackDefaultProbability
		case PluginEnricher:
			p.Fallback = FallbackOmit
			if p.Defaults != nil {
				p.Fallback = FallbackDefaults
			}
		case PluginNotifier:
			p.Fallback = FallbackDeadLetter
		}
	}
	if p.Kind == PluginNotifier {
		if len(p.Notify) == 0 {
			p.Notify = []string{"safety"}
		}
		if p.Retry.Attempts == 0 {
			p.Retry.Attempts = 8
		}
		if p.Retry.Backoff.Duration == 0 {
			p.Retry.Backoff.Duration = time.Second
		}
		if p.Retry.MaxBackoff.Duration == 0 {
			p.Retry.MaxBackoff.Duration = 5 * time.Minute
		}
	}
}

// ParseChecksum parses "sha256:<64 hex digits>" (the prefix may be left
// out) into the digest.
func ParseChecksum(s string) ([]byte, error) {
	h := strings.TrimPrefix(strings.TrimSpace(s), "sha256:")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("checksum %q must be sha256: followed by 64 hex digits (sha256sum FILE prints them)", s)
	}
	return b, nil
}

var (
	pluginKinds     = map[string]bool{PluginEnricher: true, PluginProbability: true, PluginNotifier: true}
	pluginFallbacks = map[string][]string{
		PluginProbability: {FallbackDefaultProbability},
		PluginEnricher:    {FallbackOmit, FallbackDefaults},
		PluginNotifier:    {FallbackDeadLetter},
	}
)

func validatePlugins(v *validator, c *Config) {
	names := map[string]bool{}
	for i := range c.Plugins {
		pl := &c.Plugins[i]
		p := fmt.Sprintf("plugins[%d]", i)
		if !nameRe.MatchString(pl.Name) {
			v.at(p+".name", "plugin name %q must be a lower-case identifier (it becomes input.derived.<name>)", pl.Name)
		}
		if names[pl.Name] {
			v.at(p+".name", "plugin %q is declared twice", pl.Name)
		}
		names[pl.Name] = true
		if !pluginKinds[pl.Kind] {
			v.at(p+".kind", "plugin kind %q must be enricher, probability or notifier", pl.Kind)
			continue
		}
		if strings.TrimSpace(pl.Path) == "" {
			v.at(p+".path", "plugin %q needs a path: its executable, relative to the study's folder", pl.Name)
		}
		switch {
		case pl.Checksum != "" && pl.ChecksumFile != "":
			v.at(p+".checksum", "plugin %q: give checksum or checksum_file, not both", pl.Name)
		case pl.Checksum != "":
			if _, err := ParseChecksum(pl.Checksum); err != nil {
				v.at(p+".checksum", "plugin %q: %v", pl.Name, err)
			}
		case pl.ChecksumFile == "":
			v.at(p, "plugin %q needs checksum: sha256:<hex> (or checksum_file): an unpinned executable is never run", pl.Name)
		}
		if pl.Timeout.Duration < time.Millisecond || pl.Timeout.Duration > time.Minute {
			v.at(p+".timeout", "plugin %q: timeout %s must be from 1ms to 1m", pl.Name, pl.Timeout.Duration)
		}
		ok := false
		for _, f := range pluginFallbacks[pl.Kind] {
			ok = ok || f == pl.Fallback
		}
		if !ok {
			v.at(p+".fallback", "fallback %q of a %s plugin must be %s", pl.Fallback, pl.Kind, strings.Join(pluginFallbacks[pl.Kind], " or "))
		}
		if pl.Fallback == FallbackDefaults && pl.Defaults == nil {
			v.at(p+".fallback", "fallback: defaults needs defaults: {variable: value, ...}")
		}
		if pl.Defaults != nil && pl.Kind != PluginEnricher {
			v.at(p+".defaults", "defaults apply to enrichers only")
		}
		if _, err := json.Marshal(pl.Defaults); err != nil {
			v.at(p+".defaults", "defaults must be plain values (they become part of the policy input): %v", err)
		}
		if _, err := json.Marshal(pl.Config); err != nil {
			v.at(p+".config", "config must be plain values (it is sent to the plugin as JSON): %v", err)
		}
		if pl.Outcome != "" {
			if pl.Kind != PluginProbability {
				v.at(p+".outcome", "outcome applies to probability plugins only")
			} else if o, found := findOutcome(c.Outcomes, pl.Outcome); !found {
				v.at(p+".outcome", "outcome %q is not one of the study's outcomes", pl.Outcome)
			} else if o.Event != "ema" && o.Event != "context" {
				v.at(p+".outcome", "outcome %q is measured from %s events; a plugin learns from ema or context outcomes", pl.Outcome, o.Event)
			}
		}
		if pl.Kind == PluginNotifier {
			for j, a := range pl.Notify {
				if a != "safety" && a != "deliver" && a != NotifyPolicyError {
					v.at(fmt.Sprintf("%s.notify[%d]", p, j), "notify %q must be safety, deliver or policy_error", a)
				}
			}
			if pl.Retry.Attempts < 1 || pl.Retry.Backoff.Duration <= 0 || pl.Retry.MaxBackoff.Duration < pl.Retry.Backoff.Duration {
				v.at(p+".retry", "retry needs attempts >= 1 and 0 < backoff <= max_backoff")
			}
		} else {
			if len(pl.Notify) > 0 {
				v.at(p+".notify", "notify applies to notifier plugins only")
			}
			if pl.Retry != (RetryConfig{}) {
				v.at(p+".retry", "retry applies to notifier plugins only")
			}
		}
	}
	for i, f := range c.Factors {
		if f.Type != Within && f.Plugin != "" {
			v.at(fmt.Sprintf("factors[%d].plugin", i), "plugin applies to within-person factors with probability_source: plugin")
		}
	}
}

func validateFactorPlugin(v *validator, p string, f Factor, plugins []PluginConfig) {
	switch {
	case f.ProbabilitySource == SourcePlugin && f.Plugin == "":
		v.at(p+".probability_source", "probability_source: plugin needs plugin: <name of a probability plugin>")
	case f.ProbabilitySource != SourcePlugin && f.Plugin != "":
		v.at(p+".plugin", "plugin applies only with probability_source: plugin")
	case f.Plugin != "":
		for _, pl := range plugins {
			if pl.Name == f.Plugin {
				if pl.Kind != PluginProbability {
					v.at(p+".plugin", "plugin %q is of kind %s; probability_source: plugin needs a probability plugin", f.Plugin, pl.Kind)
				}
				return
			}
		}
		v.at(p+".plugin", "plugin %q is not declared under plugins:", f.Plugin)
	}
}

func findOutcome(os []Outcome, name string) (Outcome, bool) {
	for _, o := range os {
		if o.Name == name {
			return o, true
		}
	}
	return Outcome{}, false
}
