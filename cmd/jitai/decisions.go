package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// Logged decisions for replay and explain: a JSONL file of records (one
// trial.Record per line, as `jitai export --format jsonl`, `jitai
// simulate` and GET /v1/studies/{study}/decisions/{id} give them) or a
// running server's decision listing.

// decisionSource is where logged decisions come from.
type decisionSource struct {
	file   string // JSONL file; "-" is stdin
	server string // base URL of a jitai server
	token  string // bearer token for the server
	stdin  io.Reader
	client *http.Client
}

// errStop ends an iteration early without an error.
var errStop = errors.New("stop")

// each calls fn for every logged decision of study, in the source's order.
// where names the record for messages ("decisions.jsonl:17" or the
// server's listing). A line that is not a record stops with an error that
// names the file and line.
func (s decisionSource) each(ctx context.Context, study string, fn func(where string, rec *trial.Record) error) error {
	var err error
	if s.server != "" {
		err = s.eachFromServer(ctx, study, fn)
	} else {
		err = s.eachFromFile(fn)
	}
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func (s decisionSource) eachFromFile(fn func(string, *trial.Record) error) error {
	name := s.file
	var r io.Reader
	if name == "-" {
		name = "stdin"
		r = s.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("opening the decisions: %w", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s:%d: reading: %w", name, line, err)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			rec, derr := decodeRecord(raw)
			if derr != nil {
				return fmt.Errorf("%s:%d: %v", name, line, derr)
			}
			if ferr := fn(fmt.Sprintf("%s:%d", name, line), rec); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// decodeRecord decodes one logged decision and checks that it is one.
func decodeRecord(raw []byte) (*trial.Record, error) {
	var rec trial.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not a JSON decision record: %v (at byte %d)", err, se.Offset)
		}
		return nil, fmt.Errorf("not a decision record: %v", err)
	}
	switch {
	case rec.ID == "":
		return nil, errors.New("not a decision record: no decision_id")
	case rec.Study == "":
		return nil, fmt.Errorf("decision %s: no study", rec.ID)
	case len(rec.Input) == 0 || string(rec.Input) == "null":
		return nil, fmt.Errorf("decision %s: no input document, so it cannot be replayed (records must hold the policy input)", rec.ID)
	case rec.Time.IsZero():
		return nil, fmt.Errorf("decision %s: no time", rec.ID)
	}
	return &rec, nil
}

// eachFromServer pages through GET /v1/studies/{study}/decisions.
func (s decisionSource) eachFromServer(ctx context.Context, study string, fn func(string, *trial.Record) error) error {
	cursor := ""
	for page := 1; ; page++ {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var body struct {
			Decisions  []json.RawMessage `json:"decisions"`
			NextCursor string            `json:"next_cursor"`
		}
		u := strings.TrimRight(s.server, "/") + "/v1/studies/" + url.PathEscape(study) + "/decisions?" + q.Encode()
		if err := s.get(ctx, u, &body); err != nil {
			return err
		}
		for i, raw := range body.Decisions {
			rec, err := decodeRecord(raw)
			if err != nil {
				return fmt.Errorf("%s: page %d, decision %d: %v", s.server, page, i+1, err)
			}
			if err := fn(fmt.Sprintf("%s page %d #%d", s.server, page, i+1), rec); err != nil {
				return err
			}
		}
		if body.NextCursor == "" || len(body.Decisions) == 0 {
			return nil
		}
		cursor = body.NextCursor
	}
}

// decision fetches one record: from the server, or by scanning the file.
func (s decisionSource) decision(ctx context.Context, study, id string) (*trial.Record, string, error) {
	if s.server != "" {
		u := strings.TrimRight(s.server, "/") + "/v1/studies/" + url.PathEscape(study) + "/decisions/" + url.PathEscape(id)
		var raw json.RawMessage
		if err := s.get(ctx, u, &raw); err != nil {
			return nil, "", err
		}
		rec, err := decodeRecord(raw)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %v", u, err)
		}
		return rec, u, nil
	}
	var found *trial.Record
	var where string
	err := s.each(ctx, study, func(w string, rec *trial.Record) error {
		if rec.ID == id {
			found, where = rec, w
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if found == nil {
		return nil, "", fmt.Errorf("no decision %s in %s", id, s.file)
	}
	return found, where, nil
}

// get GETs a JSON document from the server, with the token.
func (s decisionSource) get(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("--from-server: %w", err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	hc := s.client
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("--from-server: %w", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("--from-server: reading %s: %w", u, err)
	}
	if res.StatusCode != http.StatusOK {
		var p struct {
			Title, Detail string
		}
		_ = json.Unmarshal(raw, &p)
		hint := ""
		if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
			hint = " (give an analyst token with --token or JITAI_TOKEN)"
		}
		return fmt.Errorf("--from-server: GET %s: %s: %s %s%s", u, res.Status, p.Title, p.Detail, hint)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("--from-server: GET %s: not the expected JSON: %w", u, err)
	}
	return nil
}

// loadStudyFolder loads one study folder (study.yaml and policy/*.rego)
// with the embedded catalogue.
func loadStudyFolder(ctx context.Context, flagName, dir string) (*policies.Study, error) {
	dir = filepath.Clean(dir)
	if _, err := os.Stat(filepath.Join(dir, "study.yaml")); err != nil {
		return nil, fmt.Errorf("%s %s: no study.yaml there: give a study folder (study.yaml and policy/*.rego), e.g. policies/examples/stress-mrt", flagName, dir)
	}
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	s, err := policies.LoadStudy(ctx, dir, cat, loadOptions())
	if err != nil {
		return nil, fmt.Errorf("%s %s:\n%w", flagName, dir, err)
	}
	return s, nil
}
