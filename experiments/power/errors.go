package power

import (
	"errors"
	"fmt"
)

// FieldError reports an invalid input. Field names the spec field in Go
// syntax (for example "Effect.Mean" or "RandProb"); the command line maps it
// back to the flag the user typed.
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "power: Field: problem".
func (e *FieldError) Error() string {
	return fmt.Sprintf("power: %s: %s", e.Field, e.Problem)
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ErrUnattainable is returned (wrapped) when the wanted power cannot be
// reached within the sample-size search range.
var ErrUnattainable = errors.New("power not attainable")
