package trial

import (
	"fmt"
	"regexp"
	"strconv"
)

var clockRe = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// ValidClock reports whether s is a local time of day as HH:MM.
func ValidClock(s string) bool { return clockRe.MatchString(s) }

// ParseClock parses HH:MM into minutes after midnight.
func ParseClock(s string) (int, error) {
	if !clockRe.MatchString(s) {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	return h*60 + m, nil
}

// Candidate is one intervention option the policy offers.
type Candidate struct {
	ID     string  `json:"id"`
	Weight float64 `json:"weight"`
	Reason string  `json:"reason,omitempty"`
}

// QuietHours is a participant-local interval, which may wrap past midnight.
type QuietHours struct {
	Start string `yaml:"start" json:"start"`
	End   string `yaml:"end" json:"end"`
}
