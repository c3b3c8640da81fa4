package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/policies"
)

// TestAnswersConformToOpenAPI runs a companion app's session, a designer's
// and an analyst's requests, and their errors, through the real server and
// checks every request and answer against openapi.json with a strict JSON
// Schema 2020-12 validator.
func TestAnswersConformToOpenAPI(t *testing.T) {
	k := newContract(t, api.OpenAPI())
	e := newEnv(t)
	const study = stressMRT
	st := e.study(study)
	do := func(r req) response { t.Helper(); return k.checked(t, e, r) }

	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/v1/studies", "/v1/studies/" + study, "/v1/studies/" + study + "/openapi.json"} {
		do(req{Method: "GET", Path: path}).expect(t, http.StatusOK)
	}
	const p = "p-contract-01"
	enrol := req{Method: "POST", Path: participantsPath(study), Body: map[string]any{"participant_id": p, "timezone": "Europe/London", "region": "GB", "locale": "en-GB"}}
	do(enrol).expect(t, http.StatusCreated)
	do(enrol).expect(t, http.StatusOK)
	do(req{Method: "GET", Path: participantsPath(study) + "/" + p}).expect(t, http.StatusOK)
	do(req{Method: "PATCH", Path: participantsPath(study) + "/" + p, Body: map[string]any{"locale": "en-IE"}}).expect(t, http.StatusOK)
	device := participantsPath(study) + "/" + p + "/devices/phone-1"
	do(req{Method: "PUT", Path: device, Body: map[string]any{"platform": "fcm", "token": "fcm-token-0123456789"}}).expect(t, http.StatusOK)
	do(req{Method: "DELETE", Path: device}).expect(t, http.StatusNoContent)

	e.clock.Set(at(0, 13, 5))
	do(req{Method: "POST", Path: eventsPath(study, p), Body: map[string]any{"events": everyEventType(at(0, 13, 0))}}).expect(t, http.StatusAccepted)

	// Decide until one is delivered, then report engagement with it.
	seen := map[string]bool{}
	var delivered string
	day := 0
	for ; day < 30; day++ {
		when := at(day, 14, 30)
		e.clock.Set(when)
		r := do(req{Method: "POST", Path: decisionsPath(study, p), Body: map[string]any{"decision_point": appPoint(st), "time": rfc(when), "context": map[string]any{"driving": false}}})
		r.expect(t, http.StatusOK)
		var d decisionDoc
		r.decode(t, &d)
		seen[d.Action] = true
		if d.Action == "deliver" && d.Intervention != nil {
			delivered = d.DecisionID
			break
		}
	}
	if delivered == "" {
		t.Fatalf("no decision delivered an intervention in 30 days (actions %v)", seen)
	}
	do(req{Method: "POST", Path: eventsPath(study, p), Body: map[string]any{"events": []eventDoc{
		{ID: "eng-1", Type: "engagement", Time: rfc(at(day, 14, 31)), Data: map[string]any{"decision_id": delivered, "status": "opened"}},
		{ID: "eng-2", Type: "engagement", Time: rfc(at(day, 14, 40)), Data: map[string]any{"decision_id": delivered, "status": "rated", "rating": 7}},
	}}}).expect(t, http.StatusAccepted)
	for _, path := range []string{
		"/v1/studies/" + study + "/decisions?limit=2", "/v1/studies/" + study + "/decisions/" + delivered,
		"/v1/studies/" + study + "/decisions/" + delivered + "/explain", "/v1/decisions/" + delivered + "/explain",
		"/v1/studies/" + study + "/deliveries/dead-letters", "/v1/studies/" + study + "/export?format=csv", "/v1/studies/" + study + "/export?format=parquet&table=all", "/v1/studies/" + study + "/health",
	} {
		do(req{Method: "GET", Path: path}).expect(t, http.StatusOK)
	}
	do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions/" + delivered + "/delivery"})

	// A safety decision carries the study's signposting.
	e.clock.Set(at(30, 14, 0))
	do(req{Method: "POST", Path: eventsPath(study, p), Body: map[string]any{"events": []eventDoc{{ID: "phq9-risk", Type: "assessment", Time: rfc(at(30, 13, 0)),
		Data: map[string]any{"instrument": "phq9", "items": []int{0, 1, 0, 0, 0, 0, 0, 0, 1}}}}}}).expect(t, http.StatusAccepted)
	r := do(req{Method: "POST", Path: decisionsPath(study, p), Body: map[string]any{"decision_point": appPoint(st), "time": rfc(at(30, 14, 0))}})
	var d decisionDoc
	r.expect(t, http.StatusOK).decode(t, &d)
	if d.Action != "safety" || d.Signposting == nil {
		t.Fatalf("after PHQ-9 item 9 = 1: %s", r.Body)
	}

	// Errors are problems, documented for their route.
	checkProblem(t, do(req{Method: "POST", Path: eventsPath(study, p), Body: raw(`{"events": [`)}), http.StatusBadRequest, "")
	checkProblem(t, do(req{Method: "POST", Path: eventsPath(study, p), Body: raw(`{}`), Header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType, "Content-Type")
	checkProblem(t, do(req{Method: "POST", Path: eventsPath(study, p), Body: map[string]any{"events": []eventDoc{{ID: "bad-1", Type: "engagement", Time: rfc(at(30, 14, 0)), Data: map[string]any{"stress": 5}}}}}), http.StatusUnprocessableEntity, "events[0].data")
	checkProblem(t, do(req{Method: "GET", Path: "/v1/studies/no-such-study"}), http.StatusNotFound, "")
	checkProblem(t, do(req{Method: "GET", Path: participantsPath(study) + "/nobody"}), http.StatusNotFound, "")
	checkProblem(t, do(req{Method: "GET", Path: "/v1/studies/" + study + "/decisions?limit=0"}), http.StatusUnprocessableEntity, "limit")
	do(req{Method: "POST", Path: participantsPath(study) + "/" + p + "/withdraw"}).expect(t, http.StatusOK)
	checkProblem(t, do(req{Method: "POST", Path: decisionsPath(study, p), Body: map[string]any{"decision_point": appPoint(st), "time": rfc(at(30, 14, 5))}}), http.StatusConflict, "")
	do(req{Method: "DELETE", Path: participantsPath(study) + "/" + p}).expect(t, http.StatusOK)
	if !seen["none"] {
		t.Logf("no decision with action none was seen (actions %v)", seen)
	}
}

// everyEventType is one valid event of every type (and every preference).
func everyEventType(t0 time.Time) []eventDoc {
	when := rfc(t0)
	return []eventDoc{
		{ID: "ema-1", Type: "ema", Time: when, Data: map[string]any{"stress": 6, "mood": 5.5, "note": "a long day at work"}},
		{ID: "ctx-1", Type: "context", Time: when, Data: map[string]any{"location": "home", "driving": false, "steps": 1200}},
		{ID: "pref-1", Type: "preference", Time: when, Data: map[string]any{"quiet_hours": map[string]string{"start": "22:30", "end": "07:30"}}},
		{ID: "pref-2", Type: "preference", Time: when, Data: map[string]any{"snooze_minutes": 30, "opt_out": false}},
		{ID: "pref-3", Type: "preference", Time: when, Data: map[string]any{"snooze_until": ""}},
		{ID: "pref-4", Type: "preference", Time: when, Data: map[string]any{"quiet_hours": nil}},
		{ID: "phq9-1", Type: "assessment", Time: when, Data: map[string]any{"instrument": "phq9", "items": []int{1, 1, 2, 1, 0, 1, 1, 0, 0}}},
		{ID: "gad7-1", Type: "assessment", Time: when, Data: map[string]any{"instrument": "gad7", "items": []int{1, 1, 1, 0, 0, 1, 1}}},
	}
}

// TestEventsAgreeWithOpenAPI: the document and the engine agree on events.
// An event the document accepts, the engine accepts; an event whose data
// does not fit its type (preference data in an engagement, an assessment
// with the wrong number of items, a rated engagement without its rating)
// the document refuses, and so does the engine.
func TestEventsAgreeWithOpenAPI(t *testing.T) {
	k := newContract(t, api.OpenAPI())
	e := newEnv(t)
	const study, p = stressMRT, "p-events-01"
	e.enrol(study, p)
	e.clock.Set(at(0, 13, 5))
	events := component("EventsRequest")
	for _, ev := range everyEventType(at(0, 13, 0)) {
		body, _ := json.Marshal(map[string]any{"events": []eventDoc{ev}})
		k.mustConform(t, events, body)
	}
	when := rfc(at(0, 13, 0))
	bad := []eventDoc{
		{ID: "b1", Type: "engagement", Time: when, Data: map[string]any{"snooze_minutes": 30}},
		{ID: "b2", Type: "preference", Time: when, Data: map[string]any{"decision_id": "d-1", "status": "opened"}},
		{ID: "b3", Type: "assessment", Time: when, Data: map[string]any{"instrument": "phq9", "items": []int{1, 1, 1}}},
		{ID: "b4", Type: "engagement", Time: when, Data: map[string]any{"decision_id": "d-1", "status": "rated"}},
		{ID: "b5", Type: "ema", Time: when, Data: map[string]any{"Stress": 5}},
		{ID: "b6", Type: "ema", Time: when, Data: map[string]any{"stress": []int{5}}},
		{ID: "b7", Type: "preference", Time: when, Data: map[string]any{}},
		{ID: "b8", Type: "mood", Time: when, Data: map[string]any{"stress": 5}},
		{ID: "b9", Type: "preference", Time: when, Data: map[string]any{"quiet_hours": map[string]string{"start": "22:30"}}},
		{ID: "b10", Type: "engagement", Time: when, Data: map[string]any{"decision_id": "d-1", "status": "liked"}},
	}
	for _, ev := range bad {
		t.Run(ev.ID, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"events": []eventDoc{ev}})
			k.mustRefuse(t, events, body)
			r := k.checked(t, e, req{Method: "POST", Path: eventsPath(study, p), Body: raw(body)})
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("the engine answered %d, want 422: %s", r.Status, r.Body)
			}
		})
	}
}

// TestDecisionSchemaIsStrict: the Decision schema types the intervention,
// the signposting and the action; an answer that breaks them is refused.
func TestDecisionSchemaIsStrict(t *testing.T) {
	k := newContract(t, api.OpenAPI())
	base := `"decision_id":"d1","study":"s","participant_id":"p","decision_point":"dp","time":"2026-11-16T14:30:00Z","reasons":[],"expires_at":"2026-11-16T15:30:00Z","policy_revision":"r"`
	iv := `{"id":"breathing","title":"Breathe","body":"In and out.","steps":["in","out"],"duration_s":60}`
	k.mustConform(t, component("Decision"), []byte(`{`+base+`,"action":"deliver","intervention":`+iv+`,"components":{"framing":"gain"}}`))
	k.mustConform(t, component("Decision"), []byte(`{`+base+`,"action":"safety","signposting":{"title":"Help","text":"Call","contacts":[{"name":"Samaritans","phone":"116 123"}]}}`))
	for name, doc := range map[string]string{
		"unknown action":         `{` + base + `,"action":"maybe"}`,
		"empty intervention":     `{` + base + `,"action":"deliver","intervention":{}}`,
		"intervention no steps":  `{` + base + `,"action":"deliver","intervention":{"id":"x","title":"t","body":"b","duration_s":1}}`,
		"signposting no text":    `{` + base + `,"action":"safety","signposting":{"title":"Help"}}`,
		"contact not an object":  `{` + base + `,"action":"safety","signposting":{"title":"Help","text":"t","contacts":["116 123"]}}`,
		"unknown answer field":   `{` + base + `,"action":"none","extra":1}`,
		"time not a date-time":   strings.Replace(`{`+base+`,"action":"none"}`, "2026-11-16T14:30:00Z", "yesterday", 1),
		"components not strings": `{` + base + `,"action":"deliver","components":{"framing":1}}`,
	} {
		t.Run(name, func(t *testing.T) { k.mustRefuse(t, component("Decision"), []byte(doc)) })
	}
}

// TestEventDiscriminator: Event is a oneOf with a discriminator on type
// whose mapping names every variant, and each variant fixes its type.
func TestEventDiscriminator(t *testing.T) {
	k := newContract(t, api.OpenAPI())
	schemas := k.doc["components"].(map[string]any)["schemas"].(map[string]any)
	ev := schemas["Event"].(map[string]any)
	disc, _ := ev["discriminator"].(map[string]any)
	if disc["propertyName"] != "type" {
		t.Fatalf("Event's discriminator is %v, want propertyName type", disc)
	}
	mapping, _ := disc["mapping"].(map[string]any)
	var oneOf []string
	for _, v := range ev["oneOf"].([]any) {
		oneOf = append(oneOf, v.(map[string]any)["$ref"].(string))
	}
	want := []string{"ema", "context", "engagement", "preference", "assessment"}
	if len(mapping) != len(want) || len(oneOf) != len(want) {
		t.Fatalf("mapping %v and oneOf %v, want one variant per event type %v", mapping, oneOf, want)
	}
	for _, typ := range want {
		ref, _ := mapping[typ].(string)
		if !slices.Contains(oneOf, ref) {
			t.Errorf("mapping of %s is %q, not one of oneOf %v", typ, ref, oneOf)
			continue
		}
		variant := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		tp := variant["properties"].(map[string]any)["type"].(map[string]any)
		if tp["const"] != typ || !slices.Contains(variant["required"].([]any), any("type")) {
			t.Errorf("%s: type is %v (required %v), want const %q and required", ref, tp, variant["required"], typ)
		}
	}
}

// TestStudyOpenAPIDictionary: a study's document types its ema and context
// data by the data dictionary, as the engine checks them at ingestion.
func TestStudyOpenAPIDictionary(t *testing.T) {
	e := newEnv(t)
	const study, p = stressMRT, "p-dict-01"
	base := newContract(t, api.OpenAPI())
	r := base.checked(t, e, req{Method: "GET", Path: "/v1/studies/" + study + "/openapi.json"}).expect(t, http.StatusOK)
	k := newContract(t, r.Body)
	e.enrol(study, p)
	e.clock.Set(at(0, 13, 5))
	when := rfc(at(0, 13, 0))
	for name, data := range map[string]struct {
		typ, field string
		data       map[string]any
	}{
		"stress over its max":    {"ema", "stress", map[string]any{"stress": 11}},
		"mood not a number":      {"ema", "mood", map[string]any{"mood": "low"}},
		"driving not a boolean":  {"context", "driving", map[string]any{"driving": "yes"}},
		"location not a level":   {"context", "location", map[string]any{"location": "moon"}},
		"location not a string":  {"context", "location", map[string]any{"location": 3}},
		"stress below its min":   {"ema", "stress", map[string]any{"stress": -1}},
		"energy over, with more": {"ema", "energy", map[string]any{"stress": 3, "energy": 10.5}},
	} {
		t.Run(name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"events": []eventDoc{{ID: "ev-1", Type: data.typ, Time: when, Data: data.data}}})
			base.mustConform(t, component("EventsRequest"), body) // the generic document cannot know
			k.mustRefuse(t, component("EventsRequest"), body)
			res := e.do(req{Method: "POST", Path: eventsPath(study, p), Body: raw(body)})
			checkProblem(t, res, http.StatusUnprocessableEntity, "events[0].data."+data.field)
		})
	}
	ok, _ := json.Marshal(map[string]any{"events": everyEventType(at(0, 13, 0))})
	k.mustConform(t, component("EventsRequest"), ok)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type    string   `json:"type"`
					Minimum *float64 `json:"minimum"`
					Maximum *float64 `json:"maximum"`
					Enum    []string `json:"enum"`
					Title   string   `json:"title"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	r.decode(t, &doc)
	for _, v := range e.study(study).Config.Variables {
		name := map[string]string{"ema": "EMAData", "context": "ContextData"}[v.Source]
		if name == "" {
			continue // assessment totals and plugin values: no app sends them as variables
		}
		got, found := doc.Components.Schemas[name].Properties[v.Name]
		if !found || got.Type != v.Type && !(v.Type == policies.TypeCategory && got.Type == "string") || got.Title != v.Label {
			t.Errorf("%s.%s is %+v; the dictionary declares %+v", name, v.Name, got, v)
		}
		if v.Min != nil && (got.Minimum == nil || *got.Minimum != *v.Min) || v.Max != nil && (got.Maximum == nil || *got.Maximum != *v.Max) {
			t.Errorf("%s.%s range %v..%v, want %v..%v", name, v.Name, got.Minimum, got.Maximum, *v.Min, *v.Max)
		}
		if !slices.Equal(got.Enum, v.Levels) {
			t.Errorf("%s.%s levels %v, want %v", name, v.Name, got.Enum, v.Levels)
		}
	}
}

// TestStudyOpenAPIRefusesUnknown: with unknown_variables: refuse, a study's
// document refuses undeclared variables, which a keep study's accepts.
func TestStudyOpenAPIRefusesUnknown(t *testing.T) {
	cfg := *loadStudy(t, stressMRT).Config
	body := []byte(`{"events":[{"id":"e1","type":"ema","time":"2026-11-16T13:00:00Z","data":{"stress":3,"steps":1200}}]}`)
	keep, err := api.StudyOpenAPI(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	newContract(t, keep).mustConform(t, component("EventsRequest"), body)
	cfg.UnknownVariables = policies.UnknownRefuse
	refuse, err := api.StudyOpenAPI(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := newContract(t, refuse)
	k.mustRefuse(t, component("EventsRequest"), body)
	k.mustConform(t, component("EventsRequest"), []byte(strings.Replace(string(body), `,"steps":1200`, "", 1)))
	if err := cfg.CheckVariable("ema", "steps", 1200.0); err == nil {
		t.Errorf("the engine accepts the undeclared steps with unknown_variables: refuse; the document refuses it")
	}
}

// loadStudy is one example study as the tests load them.
func loadStudy(t testing.TB, id string) *policies.Study {
	t.Helper()
	for _, s := range loadStudies(t) {
		if s.Config.ID == id {
			return s
		}
	}
	t.Fatalf("example study %s is not loaded", id)
	return nil
}
