package export

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	kernel "github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies"
)

// TestPolicyInputPathsInSchema: every path of the policy input the export
// reads (the policyInput decoder's JSON tags) resolves in the one
// declaration of the input document, decision.InputSchema, which the
// input builder, study check and docs/policy.md are held to.
func TestPolicyInputPathsInSchema(t *testing.T) {
	schema := kernel.InputSchema()
	var walk func(path []string, typ reflect.Type)
	walk = func(path []string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch typ.Kind() {
		case reflect.Map:
			// A map is either a documented object (each of its fields) or
			// a map of any keys (input.context).
			keys := []string{"any"}
			if node := nodeAt(schema, path); node != nil && len(node.Fields) > 0 {
				keys = slices.Sorted(maps.Keys(node.Fields))
			}
			for _, k := range keys {
				walk(append(append([]string(nil), path...), k), typ.Elem())
			}
			return
		case reflect.Struct:
		default:
			return
		}
		if typ == reflect.TypeOf(time.Time{}) {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			p := append(append([]string(nil), path...), name)
			if msg := schema.Lookup(p); msg != "" {
				t.Errorf("the export reads input.%s: %s", strings.Join(p, "."), msg)
			}
			walk(p, f.Type)
		}
	}
	walk(nil, reflect.TypeOf(policyInput{}))
}

// nodeAt is the schema node at path, or nil.
func nodeAt(f *policies.InputField, path []string) *policies.InputField {
	for _, k := range path {
		switch {
		case f == nil:
			return nil
		case f.Fields[k] != nil:
			f = f.Fields[k]
		default:
			f = f.Each
		}
	}
	return f
}
