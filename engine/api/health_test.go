package api_test

import (
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/auth"
)

// TestHealthSchemaIsStrict: the health encoder with every field filled
// conforms to StudyHealth, and an undocumented field is refused.
func TestHealthSchemaIsStrict(t *testing.T) {
	k := newContract(t, api.OpenAPI())
	h := filled[engine.StudyHealth]()
	h.Decisions.Date = "2026-11-16"
	for _, fs := range [][]engine.FactorHealth{h.Factors, h.ByDecisionPoint[0].Factors} {
		fs[0].Flag = engine.FlagRed
	}
	k.mustConform(t, component("StudyHealth"), mustJSON(t, h))
	k.mustRefuse(t, component("FactorHealth"), []byte(`{"name":"a","randomised":1,"treated":1,"expected":0.5,"z":1,"p_value":0.3,"flag":"ok","extra":1}`))
	k.mustRefuse(t, component("FactorHealth"), []byte(`{"name":"a","randomised":1,"treated":1,"expected":0.5,"z":1,"p_value":0.3,"flag":"green"}`))
}

// TestPermits: the console's check is the route table's.
func TestPermits(t *testing.T) {
	const health = "GET /v1/studies/{study}/health"
	for _, c := range []struct {
		tok   *auth.Token
		route string
		study string
		want  bool
	}{
		{nil, health, "s", true},
		{&auth.Token{Role: auth.RoleDesigner}, health, "s", true},
		{&auth.Token{Role: auth.RoleAnalyst, Studies: []string{"other"}}, health, "s", false},
		{&auth.Token{Role: auth.RoleAnalyst, Studies: []string{"s"}}, health, "s", true},
		{&auth.Token{Role: auth.RoleApp}, health, "s", false},
		{&auth.Token{Role: auth.RoleAdmin}, health, "s", true},
		{&auth.Token{Role: auth.RoleDesigner}, "GET /v1/studies", "", true},
		{&auth.Token{Role: auth.RoleDesigner}, "GET /v1/studies/{study}/export", "s", false},
		{&auth.Token{Role: auth.RoleAnalyst}, "GET /no/such/route", "", false},
	} {
		if got := api.Permits(c.route, c.tok, c.study); got != c.want {
			t.Errorf("Permits(%s, %+v, %q) = %v, want %v", c.route, c.tok, c.study, got, c.want)
		}
	}
}
