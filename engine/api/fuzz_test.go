package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/store/sqlite"
)

// fuzzRoutes are the routes that decode a request body, with the
// participant "p-fuzz" (enrolled) in stress-mrt.
var fuzzRoutes = []string{
	"/v1/studies/" + stressMRT + "/participants",
	"/v1/studies/" + stressMRT + "/participants/p-fuzz/events",
	"/v1/studies/" + stressMRT + "/participants/p-fuzz/decisions",
}

// FuzzRequestBodies sends arbitrary bytes as the body of every POST route
// of a real server (real engine, SQLite store). Whatever the body, the
// server must not panic, must answer 2xx or 4xx (or 503, never another
// 5xx), and must answer JSON or problem+json that parses. Seeds are below
// and in testdata/fuzz/FuzzRequestBodies.
func FuzzRequestBodies(f *testing.F) {
	studies := loadStudies(f)
	st, err := sqlite.Open(filepath.Join(f.TempDir(), "jitai.db"), sqlite.Options{Durability: "process"}, zap.NewNop())
	if err != nil {
		f.Fatalf("opening sqlite store: %v", err)
	}
	f.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: at(0, 8, 0)}
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Now: clk.Now})
	if err != nil {
		f.Fatalf("engine.New: %v", err)
	}
	srv := api.New(eng, zap.NewNop(), api.Options{})
	post := func(route uint8, body []byte) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, fuzzRoutes[int(route)%len(fuzzRoutes)], bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	if w := post(0, []byte(`{"participant_id":"p-fuzz"}`)); w.Code != http.StatusCreated {
		f.Fatalf("enrolling p-fuzz: %d %s", w.Code, w.Body)
	}

	okTime := rfc(at(0, 7, 30))
	seeds := []string{
		`{"participant_id":"p-1","timezone":"Europe/London"}`,
		`{"participant_id":"p-2","strata":{"site":"a"}}`,
		`{"events":[{"id":"e1","type":"ema","time":"` + okTime + `","data":{"stress":4,"note":"fine"}}]}`,
		`{"events":[{"id":"e2","type":"engagement","time":"` + okTime + `","data":{"decision_id":"d1","status":"rated","rating":11}}]}`,
		`{"events":[{"id":"e3","type":"preference","time":"` + okTime + `","data":{"snooze_minutes":30,"quiet_hours":{"start":"22:00","end":"07:00"}}}]}`,
		`{"events":[{"id":"e4","type":"assessment","time":"` + okTime + `","data":{"instrument":"phq9","items":[0,1,2,3,0,1,2,3,0]}}]}`,
		`{"decision_point":"morning","time":"` + okTime + `","context":{"driving":false,"steps":1e308}}`,
		`{"decision_point":"morning","time":"` + okTime + `","context":{"x":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}`,
		`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
		`{"events":[]}`, `null`, `[]`, `"x"`, `{}`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		w := post(route, body)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("POST %s: status %d; body %s", fuzzRoutes[int(route)%len(fuzzRoutes)], w.Code, w.Body)
		}
		if w.Code < 200 || (w.Code >= 300 && w.Code < 400) {
			t.Fatalf("status %d is neither success nor a problem", w.Code)
		}
		ct := w.Header().Get("Content-Type")
		if ct != "application/json" && ct != "application/problem+json" {
			t.Fatalf("status %d: Content-Type %q; body %s", w.Code, ct, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("status %d: body is not JSON: %q", w.Code, w.Body)
		}
		if ct == "application/problem+json" {
			var p struct {
				Type   string `json:"type"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type == "" || p.Status != w.Code {
				t.Fatalf("bad problem for status %d: %s", w.Code, w.Body)
			}
		}
	})
}
