package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// openAPIDocument is the OpenAPI 3.1 description of this API. A test keeps
// it true: every route is documented and every documented path is a route.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the API's OpenAPI 3.1 document (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// openAPI serves GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeRaw(w, http.StatusOK, openAPIDocument)
}

// studyOpenAPI serves GET /v1/studies/{study}/openapi.json: the document
// with the study's data dictionary in its ema and context event data.
func (s *Server) studyOpenAPI(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.eng.Study(r.PathValue("study"))
	if !ok {
		s.fail(w, r, engine.ErrUnknownStudy)
		return
	}
	doc, err := StudyOpenAPI(rt.Config)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-cache") // a reload may change the dictionary
	writeRaw(w, http.StatusOK, doc)
}

// The schemas of the document that a study's data dictionary replaces, by
// the event type whose data they are.
var dictionarySchemas = map[string]string{trial.EventEMA: "EMAData", trial.EventContext: "ContextData"}

// StudyOpenAPI returns the API's OpenAPI document for one study. The data of
// its ema and context events (the EMAData and ContextData schemas) list the
// variables the study's data dictionary declares, typed as ingestion checks
// them: a number or integer within its min and max, a boolean, or one of a
// category's levels. Undeclared variables are any reported value, or refused
// (additionalProperties: false) when the study says unknown_variables:
// refuse. The study path parameter is the study's id.
func StudyOpenAPI(cfg *policies.Config) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	info, _ := doc["info"].(map[string]any)
	components, _ := doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	params, _ := components["parameters"].(map[string]any)
	study, _ := params["study"].(map[string]any)
	if info == nil || schemas == nil || study == nil {
		return nil, fmt.Errorf("the OpenAPI document lacks info, components.schemas or components.parameters.study")
	}
	info["title"] = fmt.Sprintf("%s: study %s", info["title"], cfg.ID)
	info["description"] = fmt.Sprintf("The API as study %s (%s) serves it: its ema and context events carry the variables of its data dictionary. %s",
		cfg.ID, cfg.Name, info["description"])
	study["schema"] = map[string]any{"type": "string", "enum": []string{cfg.ID}}
	for source, name := range dictionarySchemas {
		schemas[name] = dictionarySchema(cfg, source)
	}
	out, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encoding the study's OpenAPI document: %w", err)
	}
	return append(out, '\n'), nil
}

// dictionarySchema is the JSON Schema of the data of a study's events of
// type source (ema or context).
func dictionarySchema(cfg *policies.Config, source string) map[string]any {
	props := map[string]any{}
	var names []string
	for i := range cfg.Variables {
		if v := &cfg.Variables[i]; v.Source == source {
			props[v.Name] = variableSchema(v)
			names = append(names, v.Name)
		}
	}
	var unknown any = map[string]any{"$ref": "#/components/schemas/VariableValue"}
	what := "other variables are stored as reported (unknown_variables: keep)"
	if cfg.UnknownVariables == policies.UnknownRefuse {
		unknown = false
		what = "no other variable is accepted (unknown_variables: refuse)"
	}
	declared := "none"
	if len(names) > 0 {
		declared = strings.Join(names, ", ")
	}
	return map[string]any{
		"type":                 "object",
		"description":          fmt.Sprintf("The %s variables of study %s's data dictionary (%s); %s.", source, cfg.ID, declared, what),
		"allOf":                []any{map[string]any{"$ref": "#/components/schemas/VariablesData"}},
		"properties":           props,
		"additionalProperties": unknown,
	}
}

// variableSchema is the JSON Schema of one declared variable's values, as
// policies.Variable.Check accepts them.
func variableSchema(v *policies.Variable) map[string]any {
	s := map[string]any{}
	switch v.Type {
	case policies.TypeNumber, policies.TypeInteger:
		s["type"] = v.Type
		s["minimum"], s["maximum"] = -float64(trial.MaxNumber), float64(trial.MaxNumber)
		if v.Min != nil {
			s["minimum"] = max(*v.Min, -trial.MaxNumber)
		}
		if v.Max != nil {
			s["maximum"] = min(*v.Max, trial.MaxNumber)
		}
	case policies.TypeBoolean:
		s["type"] = "boolean"
	case policies.TypeCategory:
		s["type"] = "string"
		s["enum"] = v.Levels
	}
	if v.Label != "" {
		s["title"] = v.Label
	}
	var desc []string
	if v.Unit != "" {
		desc = append(desc, "unit: "+v.Unit)
	}
	if v.CurrentFor.Duration > 0 {
		desc = append(desc, "current for "+v.CurrentFor.Duration.String())
	}
	if len(desc) > 0 {
		s["description"] = strings.Join(desc, "; ")
	}
	return s
}
