// Command sleepdebt is an example enricher plugin: it estimates a
// participant's sleep debt from their nightly sleep reports.
//
// At each decision it reads the participant's latest report of the sleep
// variable (by default the EMA item sleep_hours, e.g. from a wearable or a
// morning diary) from the policy input, remembers it by the participant-
// local date it was reported on, and returns, as input.derived.<name>:
//
//	known             whether any night in the window is known
//	nights            how many nights of the window are known
//	last_night_hours  the latest report
//	debt_hours        sum over known nights of max(0, need_hours - hours)
//	short_sleep       debt_hours >= short_debt_hours
//
// The engine's state keeps only the latest value of each variable, so the
// plugin keeps its own short history per (pseudonymous) participant, in a
// JSON file in its data folder (plugins.StateFile: safe with two processes
// of the plugin during a hot reload). Erase deletes a participant's history.
//
// Config: variable (sleep_hours), need_hours (8), nights (7),
// short_debt_hours (5), state_file (sleepdebt-state.json).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/jitai/jitai/plugins"
	pb "github.com/jitai/jitai/plugins/proto"
)

const version = "sleepdebt/1.0.0"

type config struct {
	Variable       string  `json:"variable"`
	NeedHours      float64 `json:"need_hours"`
	Nights         int     `json:"nights"`
	ShortDebtHours float64 `json:"short_debt_hours"`
	StateFile      string  `json:"state_file"`
}

// input is the part of the policy input the plugin reads.
type input struct {
	Local struct {
		Date     string `json:"date"`
		Timezone string `json:"timezone"`
	} `json:"local"`
	State struct {
		EMA map[string]struct {
			Value any    `json:"value"`
			Time  string `json:"time"`
		} `json:"ema"`
	} `json:"state"`
}

type enricher struct {
	pb.UnimplementedEnricherServer
	mu   sync.Mutex
	cfg  config
	file *plugins.StateFile
	// nights: participant -> local date -> hours
	nights map[string]map[string]float64
}

func (e *enricher) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = config{Variable: "sleep_hours", NeedHours: 8, Nights: 7, ShortDebtHours: 5, StateFile: "sleepdebt-state.json"}
	if err := json.Unmarshal(req.ConfigJson, &e.cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if e.cfg.NeedHours <= 0 || e.cfg.Nights < 1 || e.cfg.Nights > 60 {
		return nil, errors.New("config: need_hours must be positive and nights from 1 to 60")
	}
	e.file = plugins.NewStateFile(filepath.Join(req.DataDir, filepath.Base(e.cfg.StateFile)))
	e.nights = map[string]map[string]float64{}
	if err := e.file.Update(e.reload, nil); err != nil {
		return nil, fmt.Errorf("reading state %s: %w", e.file.Path(), err)
	}
	return &pb.ConfigureResponse{Version: version}, nil
}

func (e *enricher) Enrich(_ context.Context, req *pb.EnrichRequest) (*pb.EnrichResponse, error) {
	var in input
	if err := json.Unmarshal(req.InputJson, &in); err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	who := req.GetDecision().GetParticipant()
	today, err := time.Parse(time.DateOnly, in.Local.Date)
	if err != nil {
		return nil, fmt.Errorf("input.local.date: %w", err)
	}
	var out map[string]any
	// Change the freshest state: another process of this plugin (during a
	// study's hot reload) may have written the file since.
	err = e.file.Update(e.reload, func() ([]byte, error) {
		var changed bool
		out, changed = e.apply(who, in, today)
		if !changed {
			return nil, nil
		}
		return json.Marshal(e.nights)
	})
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pb.EnrichResponse{DerivedJson: b}, nil
}

// apply records the latest report and returns the derived variables and
// whether the history changed.
func (e *enricher) apply(who string, in input, today time.Time) (map[string]any, bool) {
	changed := false
	if obs, ok := in.State.EMA[e.cfg.Variable]; ok {
		hours, isNum := obs.Value.(float64)
		at, err := time.Parse(time.RFC3339, obs.Time)
		loc, lerr := time.LoadLocation(in.Local.Timezone)
		if isNum && err == nil && lerr == nil && hours >= 0 && hours <= 24 {
			date := at.In(loc).Format(time.DateOnly)
			m := e.nights[who]
			if m == nil {
				m = map[string]float64{}
				e.nights[who] = m
			}
			if old, ok := m[date]; !ok || old != hours {
				m[date] = hours
				changed = true
			}
		}
	}
	from := today.AddDate(0, 0, -(e.cfg.Nights - 1)).Format(time.DateOnly)
	var dates []string
	for d := range e.nights[who] {
		if d >= from && d <= in.Local.Date {
			dates = append(dates, d)
		} else if d < from {
			delete(e.nights[who], d) // out of every future window
			changed = true
		}
	}
	sort.Strings(dates)
	debt := 0.0
	for _, d := range dates {
		debt += math.Max(0, e.cfg.NeedHours-e.nights[who][d])
	}
	debt = math.Round(debt*10) / 10
	out := map[string]any{"known": len(dates) > 0, "nights": len(dates), "debt_hours": debt, "short_sleep": len(dates) > 0 && debt >= e.cfg.ShortDebtHours}
	if len(dates) > 0 {
		out["last_night_hours"] = e.nights[who][dates[len(dates)-1]]
	}
	return out, changed
}

// Erase deletes the participant's sleep history (memory and file).
func (e *enricher) Erase(_ context.Context, req *pb.EraseRequest) (*pb.EraseResponse, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.file.Update(e.reload, func() ([]byte, error) {
		if _, ok := e.nights[req.Participant]; !ok {
			return nil, nil
		}
		delete(e.nights, req.Participant)
		return json.Marshal(e.nights)
	})
	return &pb.EraseResponse{}, err
}

// reload replaces the in-memory history with the file's.
func (e *enricher) reload(raw []byte) error {
	nights := map[string]map[string]float64{}
	if err := json.Unmarshal(raw, &nights); err != nil {
		return err
	}
	e.nights = nights
	return nil
}

func main() {
	if err := plugins.Serve(&enricher{}, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
