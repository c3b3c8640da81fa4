package irvm

import (
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// fast holds exact reimplementations of the hottest pure built-ins (the
// same logic as OPA's topdown versions), called without OPA's calling
// convention.
var fast = map[string]fastFunc{
	ast.GreaterThan.Name:   func(a []*ast.Term) (*ast.Term, bool) { return bool2(a[0].Value.Compare(a[1].Value) > 0), true },
	ast.GreaterThanEq.Name: func(a []*ast.Term) (*ast.Term, bool) { return bool2(a[0].Value.Compare(a[1].Value) >= 0), true },
	ast.LessThan.Name:      func(a []*ast.Term) (*ast.Term, bool) { return bool2(a[0].Value.Compare(a[1].Value) < 0), true },
	ast.LessThanEq.Name:    func(a []*ast.Term) (*ast.Term, bool) { return bool2(a[0].Value.Compare(a[1].Value) <= 0), true },
	ast.Equal.Name:         func(a []*ast.Term) (*ast.Term, bool) { return bool2(a[0].Equal(a[1])), true },
	ast.NotEqual.Name:      func(a []*ast.Term) (*ast.Term, bool) { return bool2(!a[0].Equal(a[1])), true },
	ast.IsNumber.Name:      isType(func(v ast.Value) bool { _, ok := v.(ast.Number); return ok }),
	ast.IsString.Name:      isType(func(v ast.Value) bool { _, ok := v.(ast.String); return ok }),
	ast.IsBoolean.Name:     isType(func(v ast.Value) bool { _, ok := v.(ast.Boolean); return ok }),
	ast.IsArray.Name:       isType(func(v ast.Value) bool { _, ok := v.(*ast.Array); return ok }),
	ast.IsObject.Name:      isType(func(v ast.Value) bool { _, ok := v.(ast.Object); return ok }),
	ast.IsSet.Name:         isType(func(v ast.Value) bool { _, ok := v.(ast.Set); return ok }),
	ast.IsNull.Name:        isType(func(v ast.Value) bool { _, ok := v.(ast.Null); return ok }),
	ast.Count.Name: func(a []*ast.Term) (*ast.Term, bool) {
		switch x := a[0].Value.(type) {
		case *ast.Array:
			return ast.InternedTerm(x.Len()), true
		case ast.Object:
			return ast.InternedTerm(x.Len()), true
		case ast.Set:
			return ast.InternedTerm(x.Len()), true
		case ast.String:
			return ast.InternedTerm(utf8.RuneCountInString(string(x))), true
		}
		return nil, false // OPA's version reports the type error
	},
	ast.Member.Name: func(a []*ast.Term) (*ast.Term, bool) {
		switch c := a[1].Value.(type) {
		case ast.Set:
			return bool2(c.Contains(a[0])), true
		case *ast.Array:
			return bool2(c.Until(a[0].Equal)), true
		case ast.Object:
			return bool2(c.Until(func(_, v *ast.Term) bool { return a[0].Equal(v) })), true
		}
		return bool2(false), true
	},
}

var trueTerm, falseTerm = ast.BooleanTerm(true), ast.BooleanTerm(false)

func bool2(b bool) *ast.Term {
	if b {
		return trueTerm
	}
	return falseTerm
}

func isType(is func(ast.Value) bool) fastFunc {
	return func(a []*ast.Term) (*ast.Term, bool) { return bool2(is(a[0].Value)), true }
}
