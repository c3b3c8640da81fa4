package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// contract checks requests and answers against an OpenAPI 3.1 document with
// a strict JSON Schema 2020-12 validator (formats asserted).
type contract struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

// docURL is where the document is registered with the validator.
const docURL = "http://jitai.invalid/openapi.json"

func newContract(t testing.TB, doc []byte) *contract {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, v); err != nil {
		t.Fatalf("adding the OpenAPI document: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return &contract{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// pointer makes a JSON pointer from tokens, escaped for a URL fragment.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, tok := range tokens {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
		b.WriteString("/" + url.PathEscape(tok))
	}
	return b.String()
}

// schema compiles the schema at a JSON pointer of the document.
func (k *contract) schema(t testing.TB, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := k.schemas[ptr]; ok {
		return s
	}
	s, err := k.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("compiling the schema at %s: %v", ptr, err)
	}
	k.schemas[ptr] = s
	return s
}

// component is the pointer of a schema of components.schemas.
func component(name string) string { return pointer("components", "schemas", name) }

// check validates a JSON document against the schema at ptr; the error
// says why it does not conform.
func (k *contract) check(t testing.TB, ptr string, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return k.schema(t, ptr).Validate(inst)
}

// mustConform fails the test unless body conforms to the schema at ptr.
func (k *contract) mustConform(t testing.TB, ptr string, body []byte) {
	t.Helper()
	if err := k.check(t, ptr, body); err != nil {
		t.Errorf("%.400s\ndoes not conform to %s:\n%v", body, ptr, err)
	}
}

// mustRefuse fails the test if body conforms to the schema at ptr.
func (k *contract) mustRefuse(t testing.TB, ptr string, body []byte) {
	t.Helper()
	if err := k.check(t, ptr, body); err == nil {
		t.Errorf("%.400s\nconforms to %s; the document is too loose", body, ptr)
	}
}

// matches reports whether a request path fits a path template of the
// document, and how many of its segments are literal.
func matches(tpl, path string) (bool, int) {
	ts, ps := strings.Split(tpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false, 0
	}
	literals := 0
	for i := range ts {
		switch {
		case strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}"):
			if ps[i] == "" {
				return false, 0
			}
		case ts[i] == ps[i]:
			literals++
		default:
			return false, 0
		}
	}
	return true, literals
}

// operation finds the documented path template that serves a request path
// (the one with most literal segments) and its operation.
func (k *contract) operation(t testing.TB, method, path string) (string, map[string]any) {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	paths, _ := k.doc["paths"].(map[string]any)
	best, bestLiterals := "", -1
	for tpl := range paths {
		if ok, n := matches(tpl, path); ok && n > bestLiterals {
			best, bestLiterals = tpl, n
		}
	}
	if best == "" {
		t.Fatalf("%s %s: no path of the document serves it", method, path)
	}
	op, ok := paths[best].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: the document's %s has no %s operation", method, path, best, method)
	}
	return best, op
}

// exchange checks one request and its answer against the document: the
// answer's status and media type are documented for the operation and its
// body conforms to their schema; a request the engine accepted (2xx)
// conforms to the operation's request body schema.
func (k *contract) exchange(t testing.TB, r req, res response) {
	t.Helper()
	tpl, op := k.operation(t, r.Method, r.Path)
	where := pointer("paths", tpl, strings.ToLower(r.Method))
	if res.Status/100 == 2 && r.Body != nil {
		body, err := requestBody(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := op["requestBody"]; !ok {
			t.Errorf("%s %s sends a body the document does not describe", r.Method, tpl)
		} else {
			k.mustConform(t, where+pointer("requestBody", "content", "application/json", "schema"), body)
		}
	}
	responses, _ := op["responses"].(map[string]any)
	status := strconv.Itoa(res.Status)
	resp, ok := responses[status].(map[string]any)
	if !ok {
		t.Errorf("%s %s answered %d, which the document does not list: %.300s", r.Method, tpl, res.Status, res.Body)
		return
	}
	respPtr := where + pointer("responses", status)
	if ref, ok := resp["$ref"].(string); ok {
		respPtr = strings.TrimPrefix(ref, "#")
		name := ref[strings.LastIndex(ref, "/")+1:]
		resp, _ = k.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(res.Body) > 0 {
			t.Errorf("%s %s %d: the document says no body; got %.300s", r.Method, tpl, res.Status, res.Body)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s %s %d: Content-Type %q: %v", r.Method, tpl, res.Status, res.Header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s %s %d: Content-Type %s is not documented (%v)", r.Method, tpl, res.Status, mt, keys(content))
		return
	}
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		k.mustConform(t, respPtr+pointer("content", mt, "schema"), res.Body)
	}
}

func requestBody(b any) ([]byte, error) {
	switch x := b.(type) {
	case raw:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return json.Marshal(b)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checked sends a request through the real server and checks the exchange.
func (k *contract) checked(t testing.TB, e *env, r req) response {
	t.Helper()
	res := e.do(r)
	k.exchange(t, r, res)
	return res
}
