package api

import (
	"bytes"
	"encoding/json"
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

// duplicateKeyError reports a member name given twice in one JSON object;
// Path is its path (events[0].data.stress).
type duplicateKeyError struct{ Path string }

func (e *duplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate JSON key %s", e.Path)
}

// keyFrame is an object or array being walked by checkDuplicateKeys.
type keyFrame struct {
	object    bool
	path      string
	keys      map[string]struct{}
	key       string // the member whose value is being read
	expectKey bool
	index     int
}

// child is the path of the value being read in f.
func (f *keyFrame) child() string {
	if f.object {
		return joinPath(f.path, f.key)
	}
	return fmt.Sprintf("%s[%d]", f.path, f.index)
}

// done moves f past one value.
func (f *keyFrame) done() {
	if f.object {
		f.expectKey = true
	} else {
		f.index++
	}
}

func joinPath(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// checkDuplicateKeys refuses an object with the same member twice (names
// compared after unescaping, so "a" and "\u0061" are the same): the
// decoder would keep the last one silently. A body that is not valid JSON
// passes; decoding reports it. Run it after checkDepth.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*keyFrame
	top := func() *keyFrame {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or a syntax error the decoder reports
		}
		f := top()
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				p := ""
				if f != nil {
					p = f.child()
				}
				nf := &keyFrame{object: t == '{', path: p, expectKey: true}
				if nf.object {
					nf.keys = map[string]struct{}{}
				}
				stack = append(stack, nf)
				continue
			}
			stack = stack[:len(stack)-1]
		case string:
			if f != nil && f.object && f.expectKey {
				if _, dup := f.keys[t]; dup {
					return &duplicateKeyError{Path: joinPath(f.path, t)}
				}
				f.keys[t] = struct{}{}
				f.key, f.expectKey = t, false
				continue
			}
		}
		if f := top(); f != nil {
			f.done()
		}
	}
}
