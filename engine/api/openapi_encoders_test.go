package api_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// fill sets every exported field reachable from v to a value that is not
// zero, so that an encoder writes all of its fields (omitempty included).
func fill(v reflect.Value) {
	switch v.Interface().(type) {
	case time.Time:
		v.Set(reflect.ValueOf(time.Date(2026, time.November, 16, 14, 30, 0, 0, time.UTC)))
		return
	case json.RawMessage:
		v.Set(reflect.ValueOf(json.RawMessage(`{"k":1}`)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.SetMapIndex(reflect.ValueOf("k"), e)
	case reflect.Interface:
		v.Set(reflect.ValueOf("v"))
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}

// filled is a T with every field filled.
func filled[T any]() *T {
	var v T
	fill(reflect.ValueOf(&v).Elem())
	return &v
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenAPIEncodersComplete: every field the engine's encoders write is
// in the document, typed. Each answer struct is filled completely (what a
// live exchange rarely shows: a delivery log, a fail-safe record, a
// plugin's call) and checked against its schema, which says
// additionalProperties: false; the enumerated fields get real values.
func TestOpenAPIEncodersComplete(t *testing.T) {
	k := newContract(t, api.OpenAPI())

	rendered, crisis := filled[interventions.Rendered](), filled[policies.Crisis]()
	answer := filled[engine.Response]()
	answer.Action, answer.Intervention, answer.Signposting = trial.ActionDeliver, rendered, crisis
	answerJSON := mustJSON(t, answer)
	k.mustConform(t, component("Decision"), answerJSON)

	rec := filled[trial.Record]()
	rec.Action, rec.Trigger, rec.Intervention = trial.ActionSafety, trial.TriggerEvent, rendered
	rec.Plugins[0].Reason, rec.Factors[0].Plugin.Reason = trial.PluginTimeout, trial.PluginInvalid
	rec.PolicyError.Kind, rec.PolicyError.Safety = "timeout", "evaluated"
	recJSON, err := rec.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	k.mustConform(t, component("Record"), recJSON)

	d := filled[trial.Delivery]()
	d.Status, d.Trigger, d.Action, d.Answer = trial.DeliverySent, trial.TriggerScheduled, trial.ActionDeliver, answerJSON
	dJSON := mustJSON(t, d)
	k.mustConform(t, component("Delivery"), dJSON)

	// The schemas are strict: a field they do not know is refused.
	for _, c := range []struct {
		schema string
		doc    []byte
	}{{"Decision", answerJSON}, {"Record", recJSON}, {"Delivery", dJSON}} {
		var m map[string]any
		if err := json.Unmarshal(c.doc, &m); err != nil {
			t.Fatal(err)
		}
		m["not_documented"] = 1
		k.mustRefuse(t, component(c.schema), mustJSON(t, m))
	}
}
