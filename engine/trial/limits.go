package trial

import (
	"encoding/json"
	"math"
	"time"
)

// More limits on untrusted input (see also MaxEventsPerRequest). Every
// string and number that a client sends is bounded, so that no request can
// make a policy input, a stored record or an error message unboundedly big.
const (
	// MaxTextValue is the longest string an event's data may carry (free
	// text such as an EMA note; stored, never given to policies).
	MaxTextValue = 4096
	// MaxNumber bounds the magnitude of numbers in context and event data.
	MaxNumber = 1e9
	// maxNameLen bounds names that are looked up in the study (decision
	// points, event types, strata, time zones) before they are echoed back.
	maxNameLen = 64
)

// CheckNumber checks that a client-sent number is finite and within
// ±MaxNumber.
func CheckNumber(field string, x float64) error {
	if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > MaxNumber {
		return InputErrorf(field, "number out of range (at most %g in magnitude)", MaxNumber)
	}
	return nil
}

// CheckContextNumber checks a context value decoded with UseNumber.
func CheckContextNumber(field string, n json.Number) error {
	x, err := n.Float64()
	if err != nil {
		return InputErrorf(field, "number out of range (at most %g in magnitude)", MaxNumber)
	}
	return CheckNumber(field, x)
}

// CheckName bounds a short name before it is looked up or echoed.
func CheckName(field, s string) error {
	if len(s) > maxNameLen {
		return InputErrorf(field, "at most %d characters", maxNameLen)
	}
	return nil
}

// CheckStrata bounds the strata names and values of an enrolment.
func CheckStrata(strata map[string]string) error {
	if len(strata) > MaxVariables {
		return InputErrorf("strata", "at most %d strata", MaxVariables)
	}
	for k, v := range strata {
		if !ValidVariable(k) {
			return InputErrorf("strata", "stratum names are lower-case identifiers of at most %d characters", maxNameLen)
		}
		if len(v) > MaxStringValue {
			return InputErrorf("strata."+k, "stratum values are 1-%d characters without | or =", MaxStringValue)
		}
	}
	return nil
}

// The years a decision or an event time may fall in: every store holds
// such times exactly (int64 nanoseconds reach 1678-2262), and a record's
// expiry stays a valid RFC 3339 year.
const (
	MinYear = 2000
	MaxYear = 2199
)

// CheckTime refuses a client-sent time outside the years MinYear to
// MaxYear.
func CheckTime(field string, t time.Time) error {
	if y := t.UTC().Year(); y < MinYear || y > MaxYear {
		return InputErrorf(field, "time %s is outside the times a trial records (years %d-%d)", t.UTC().Format(time.RFC3339), MinYear, MaxYear)
	}
	return nil
}
