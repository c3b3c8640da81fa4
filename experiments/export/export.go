// Package export turns a study's stored decisions, participants and events
// into analysis-ready tables (docs/architecture.md): a long
// table with one row per (participant, decision point), a table with one
// row per participant and one with a row per delivered decision (its
// engagement), written as CSV or Parquet with a codebook that also says
// how R and pandas read each CSV file with its columns' types.
//
// The decisions table follows the conventions of MRTAnalysis (wcls, emee):
// rows of a participant are contiguous and in time order, availability and
// every factor's level are 0/1 integers, the randomisation probability of a
// within-person factor is its own column, and missing values are missing
// (NA in CSV, where an empty string is ""; null in Parquet), never zero.
//
// Column order is stable and documented in the codebook: the fixed columns,
// then each factor in study.yaml order, then each proximal outcome in
// study.yaml order, then the policy's input (history, then ema_*, ctx_*,
// ctxev_*, assess_*, tailoring_* each sorted by name). A study with plugins
// has more: after the _draw of a factor whose probability comes from a
// plugin, its _prob_source, _provider_value, _provider_version and
// _fallback_reason; after the factors, each enricher plugin's
// <plugin>_enricher_fallback (study.yaml order).
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/policies"
)

// Store is what an export reads. engine.Store satisfies it.
type Store interface {
	// Participants lists a study's participants in enrolment order.
	Participants(ctx context.Context, study string) ([]*trial.Participant, error)
	// Events lists a participant's stored events in time order.
	Events(ctx context.Context, study, participant string) ([]trial.Event, error)
	// ListDecisions lists records in (time, id) order.
	ListDecisions(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error)
}

// Options configure an export.
type Options struct {
	// Now is the time of the export (default time.Now). A proximal outcome
	// whose window has not closed by then is missing: it may still change.
	Now func() time.Time
}

// Type is a column's type.
type Type string

// Column types. Values in Table.Rows are nil (missing) or of the Go type
// named with each.
const (
	// Integer columns hold int64 values (Parquet INT32; 0/1 flags, levels, counts).
	Integer Type = "integer"
	// Double columns hold float64 values (Parquet DOUBLE).
	Double Type = "double"
	// String columns hold string values (Parquet BYTE_ARRAY, logical type STRING).
	String Type = "string"
	// Timestamp columns hold time.Time values in UTC (Parquet INT64,
	// logical type TIMESTAMP(MICROS, UTC); RFC 3339 in CSV).
	Timestamp Type = "timestamp"
)

// Table names.
const (
	DecisionsTable    = "decisions"
	ParticipantsTable = "participants"
	EngagementTable   = "engagement"
)

// Column describes one column of a table (its codebook entry).
type Column struct {
	Name  string `json:"name"`
	Table string `json:"table"`
	Type  Type   `json:"type"`
	// ParquetType is the column's Parquet physical and logical type.
	ParquetType string `json:"parquet_type"`
	Unit        string `json:"unit,omitempty"`
	// Levels lists the values of a categorical column: "0 = none" for a
	// 0/1-coded column, the value itself for a string column.
	Levels      []string `json:"levels,omitempty"`
	Description string   `json:"description"`
	// Missing says when the value is missing (NA in CSV, null in Parquet).
	Missing string `json:"missing"`
	// RClass is the column's class in R's read.csv colClasses, and
	// PandasDtype its dtype in pandas' read_csv (see readers.go).
	RClass      string `json:"r_class"`
	PandasDtype string `json:"pandas_dtype"`
	// Variable is the study's data dictionary entry of a declared
	// variable's column (nil for other columns).
	Variable *Variable `json:"variable,omitempty"`
}

// Variable is a data dictionary entry as the codebook shows it.
type Variable struct {
	Source string `json:"source"`
	Plugin string `json:"plugin,omitempty"`
	Name   string `json:"name"`
	// Type is the declared type: number, integer, boolean or category.
	Type   string   `json:"type"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
	Levels []string `json:"levels,omitempty"`
	Unit   string   `json:"unit,omitempty"`
	Label  string   `json:"label,omitempty"`
	// CurrentFor is how long a report stays current, e.g. "2h".
	CurrentFor string `json:"current_for,omitempty"`
}

// Table is one exported table.
type Table struct {
	Name    string
	Columns []Column
	// Rows holds one value per column: nil when missing, else int64,
	// float64, string or time.Time as the column's Type says.
	Rows [][]any
}

// Index returns the position of the named column, or -1.
func (t *Table) Index(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Value returns row i's value of the named column (nil when missing or
// when there is no such column).
func (t *Table) Value(i int, name string) any {
	j := t.Index(name)
	if j < 0 {
		return nil
	}
	return t.Rows[i][j]
}

// Tables is a study's export.
type Tables struct {
	Study     string
	StudyName string
	// PolicyRevisions lists the policy revisions found in the records, in
	// order of first use.
	PolicyRevisions []string
	GeneratedAt     time.Time
	Decisions       *Table
	Participants    *Table
	// Engagement has one row per delivered decision: what the app
	// reported of it.
	Engagement *Table
	// pluginNote completes the decisions table's codebook description
	// for a study with plugins ("" without).
	pluginNote string
}

// Table returns the named table, or nil.
func (ts *Tables) Table(name string) *Table {
	switch name {
	case DecisionsTable:
		return ts.Decisions
	case ParticipantsTable:
		return ts.Participants
	case EngagementTable:
		return ts.Engagement
	}
	return nil
}

// pageSize is how many records are read per query, which bounds memory
// for participants with very many decisions.
const pageSize = 5000

// Build reads a study's participants (in enrolment order), their decisions
// (by time, then id) and events, and returns the export's tables.
func Build(ctx context.Context, st Store, study *policies.Study, opts Options) (*Tables, error) {
	if study == nil || study.Config == nil {
		return nil, errors.New("export: no study given")
	}
	cfg := study.Config
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	b := newBuilder(cfg, now().UTC())
	parts, err := st.Participants(ctx, cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("export of study %s: listing participants: %w", cfg.ID, err)
	}
	err = fetchInOrder(ctx, st, cfg, parts, func(p *trial.Participant, f fetched) error {
		return b.addParticipant(p, f)
	})
	if err != nil {
		return nil, err
	}
	ts, err := b.finish()
	if err != nil {
		return nil, fmt.Errorf("export of study %s: %w", cfg.ID, err)
	}
	ts.StudyName = cfg.Name
	return ts, nil
}

// fetchWorkers is how many participants are read from the store at once
// (the reads decode JSON records, so they use the cores); it also bounds
// how many participants' records are held before they become rows.
const fetchWorkers = 4

// fetched is what is read and decoded of one participant: the records,
// their policy inputs (inputs[i] is recs[i]'s), the events and the
// delivery logs. The fetch workers decode, so that both the store's
// decoding and the export's use the cores.
type fetched struct {
	recs   []*trial.Record
	inputs []policyInput
	idx    *eventIndex
	dels   map[string]*trial.Delivery // by decision id
	err    error
}

// fetch reads and decodes one participant's records, events and delivery
// logs.
func fetch(ctx context.Context, st Store, cfg *policies.Config, p *trial.Participant) (f fetched) {
	study := cfg.ID
	if f.recs, f.err = listDecisions(ctx, st, study, p.ID); f.err != nil {
		return f
	}
	evs, err := st.Events(ctx, study, p.ID)
	if err != nil {
		f.err = fmt.Errorf("export of study %s: listing events of a participant: %w", study, err)
		return f
	}
	f.idx = newEventIndex(evs)
	// Only a study with a delivery section has delivery columns.
	if cfg.Delivery != nil {
		if f.dels, f.err = deliveries(ctx, st, study, p.ID, f.recs); f.err != nil {
			return f
		}
	}
	var dec inputDecoder
	f.inputs = make([]policyInput, len(f.recs))
	for i, rec := range f.recs {
		if err := dec.decode(rec.Input, &f.inputs[i]); err != nil {
			f.err = fmt.Errorf("export of study %s: decoding the policy input of decision %s: %w", study, rec.ID, err)
			return f
		}
	}
	return f
}

// DeliveryLogs is what an export reads of the trial clock's delivery logs
// when the store keeps them (every engine store does: trial.Clock).
type DeliveryLogs interface {
	Delivery(ctx context.Context, study, participant, decisionID string) (*trial.Delivery, error)
}

// deliveries reads the delivery logs of the participant's scheduled and
// event-triggered deliver or safety decisions (the others have none).
func deliveries(ctx context.Context, st Store, study, participant string, recs []*trial.Record) (map[string]*trial.Delivery, error) {
	dl, ok := st.(DeliveryLogs)
	if !ok {
		return nil, nil
	}
	var out map[string]*trial.Delivery
	for _, r := range recs {
		if r.Action != trial.ActionDeliver && r.Action != trial.ActionSafety {
			continue
		}
		d, err := dl.Delivery(ctx, study, participant, r.ID)
		if errors.Is(err, trial.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("export of study %s: reading a delivery log: %w", study, err)
		}
		if out == nil {
			out = map[string]*trial.Delivery{}
		}
		out[r.ID] = d
	}
	return out, nil
}

// fetchInOrder reads each participant's decisions and events, up to
// fetchWorkers participants at once, and calls use for each in the order
// of parts. It returns the first error and waits for every read it started.
func fetchInOrder(ctx context.Context, st Store, cfg *policies.Config, parts []*trial.Participant, use func(*trial.Participant, fetched) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan fetched, len(parts))
	for i := range results {
		results[i] = make(chan fetched, 1)
	}
	tokens := make(chan struct{}, fetchWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range parts {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] <- fetch(ctx, st, cfg, p)
			}()
		}
	}()
	for i, p := range parts {
		var f fetched
		select {
		case f = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-tokens
		if f.err != nil {
			return f.err
		}
		if err := use(p, f); err != nil {
			return err
		}
	}
	return nil
}

func listDecisions(ctx context.Context, st Store, study, participant string) ([]*trial.Record, error) {
	var out []*trial.Record
	q := trial.DecisionQuery{Study: study, Participant: participant, Limit: pageSize}
	for {
		recs, err := st.ListDecisions(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("export of study %s: listing decisions: %w", study, err)
		}
		out = append(out, recs...)
		if len(recs) < pageSize {
			break
		}
		last := recs[len(recs)-1]
		q.AfterTime, q.AfterID = last.Time, last.ID
	}
	// The store lists by (time, id); keep that order even if a store
	// breaks ties differently.
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// policyInput is the part of a record's policy input that is exported.
type policyInput struct {
	Participant struct {
		DayInStudy *float64 `json:"day_in_study"`
	} `json:"participant"`
	Context map[string]any `json:"context"`
	// Derived is what each enricher plugin returned: plugin -> object.
	Derived map[string]any `json:"derived"`
	State   struct {
		EMA        map[string]inputValue      `json:"ema"`
		Context    map[string]inputValue      `json:"context"`
		Assessment map[string]inputAssessment `json:"assessment"`
	} `json:"state"`
	History inputHistory `json:"history"`
}

// inputValue is a reported variable of the policy input's state.
type inputValue struct {
	Value any `json:"value"`
}

// inputAssessment is an instrument of the policy input's state.
type inputAssessment struct {
	Total *float64 `json:"total"`
}

// inputHistory is the policy input's history.
type inputHistory struct {
	PromptsToday           *float64 `json:"prompts_today"`
	DecisionsToday         *float64 `json:"decisions_today"`
	MinutesSinceLastPrompt *float64 `json:"minutes_since_last_prompt"`
}

// scalar returns v if it is a number, boolean or short string, the
// elements joined by ";" if it is an array of those, and nil otherwise.
// Strings longer than maxString are free text and never exported.
func scalar(v any) any {
	switch x := v.(type) {
	case float64, bool:
		return x
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil
		}
		return f
	case string:
		if len(x) > maxString {
			return nil
		}
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := scalar(e).(string)
			if !ok {
				switch e.(type) {
				case float64, bool, json.Number:
					s = formatRaw(scalar(e))
				default:
					return nil
				}
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ";")
	}
	return nil
}

// maxString is the longest string value exported; longer ones are free
// text (the engine never gives them to policies either).
const maxString = 64
