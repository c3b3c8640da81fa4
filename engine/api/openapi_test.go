package api_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine/api"
)

// registeredRoutes reads the routes the server registers from this
// package's source: every Handle or HandleFunc call with a "METHOD /path"
// pattern. The catch-all "/" (no method) is not a route.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parsing %s: %v", name, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: route pattern is not a string literal; this test cannot check it", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			if !strings.Contains(pattern, " ") {
				return true // catch-all or method-less: not a documented route
			}
			routes = append(routes, pattern)
			return true
		})
	}
	return routes
}

// documentedRoutes lists "METHOD /path" for every operation in the document.
func documentedRoutes(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.1") {
		t.Errorf("openapi is %q, want 3.1.x", d.OpenAPI)
	}
	methods := []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	var out []string
	for path, item := range d.Paths {
		for k := range item {
			if slices.Contains(methods, k) {
				out = append(out, strings.ToUpper(k)+" "+path)
			}
		}
	}
	return out
}

// normalise turns a ServeMux pattern into its OpenAPI form: {name...} and
// {$} wildcards become {name} and nothing.
func normalise(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "...}", "}")
	path = strings.TrimSuffix(path, "{$}")
	return method + " " + path
}

// TestOpenAPICoversEveryRoute keeps openapi.json true: every registered
// route is documented, and every documented operation is a route. Adding a
// route without documenting it fails here.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	routes := registeredRoutes(t)
	if len(routes) < 10 {
		t.Fatalf("found only %d routes in the source (%v); is the parser still right?", len(routes), routes)
	}
	documented := documentedRoutes(t, api.OpenAPI())
	registered := map[string]bool{}
	for _, r := range routes {
		n := normalise(r)
		registered[n] = true
		if !slices.Contains(documented, n) {
			t.Errorf("route %q is not in engine/api/openapi.json: document it (parameters, request, responses, problems)", r)
		}
	}
	for _, d := range documented {
		if !registered[d] {
			t.Errorf("engine/api/openapi.json documents %q, which is not a route", d)
		}
	}
}

// TestOpenAPIServed: the document is served at /openapi.json, and every
// $ref in it resolves.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	res := e.do(req{Method: http.MethodGet, Path: "/openapi.json"}).expect(t, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var doc map[string]any
	res.decode(t, &doc)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok && !resolves(doc, ref) {
				t.Errorf("$ref %q does not resolve", ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	if !strings.HasPrefix(ref, "#/") {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
