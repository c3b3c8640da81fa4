package api

import (
	"fmt"
	"net/http"
)

// MaxJSONDepth is the deepest nesting of objects and arrays accepted in a
// request body. The API's documents need 4 levels; the margin is for
// clients, not for attackers.
const MaxJSONDepth = 16

// depthError reports a request body nested deeper than MaxJSONDepth. Field
// is the top-level member under which the nesting went too deep.
type depthError struct {
	Field string
	Max   int
}

func (e *depthError) Error() string {
	return fmt.Sprintf("JSON nested deeper than %d levels", e.Max)
}

func (e *depthError) problem() *Problem {
	where := "the body"
	if e.Field != "" {
		where = fmt.Sprintf("field %q", e.Field)
	}
	return problem(http.StatusBadRequest, "too-deep", "JSON nested too deeply",
		fmt.Sprintf("%s is nested deeper than %d levels of objects and arrays", where, e.Max), e.Field)
}

// checkDepth scans a JSON text for nesting deeper than max before it is
// decoded, so that a hostile body costs one linear pass and no allocation.
// It does not validate the JSON (the decoder does); it only tracks strings,
// escapes and brackets, and names the top-level member it was in.
func checkDepth(body []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	keyStart := -1 // start of the string being read at depth 1, if any
	lastKey := ""
	topObject := false // the body is an object (so depth-1 strings are member names and values)
	for i, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if keyStart >= 0 {
					lastKey = string(body[keyStart:i])
					keyStart = -1
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && topObject {
				keyStart = i + 1
			}
		case '{', '[':
			if depth == 0 {
				topObject = c == '{'
			}
			depth++
			if depth > max {
				return &depthError{Field: lastKey, Max: max}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
