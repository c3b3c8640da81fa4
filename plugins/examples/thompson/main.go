// Command thompson is an example probability provider plugin: Thompson
// sampling with a Beta-Bernoulli model of a proximal outcome.
//
// For each within-person factor it keeps a Beta posterior of the success
// rate under each level (0 and 1), where success is the outcome value being
// below (or above) a threshold, e.g. stress 30-90 minutes later below 5.
// The probability of level 1 is the posterior probability that level 1 has
// the higher success rate, P(θ1 > θ0), clipped to [min, max]: exactly the
// probability with which Thompson sampling would choose level 1, so the
// engine's draw against it is Thompson sampling, and the probability it
// records is the true randomisation probability. The engine clips again to
// the factor's bounds.
//
// The posterior is learned from the engine's outcome reports (the first
// report per decision and factor counts) and persisted to a JSON file in
// the plugin's data folder after every update, so it survives restarts.
// Two processes of the plugin share the file during a study's hot reload:
// each update reloads the file first if the other wrote it
// (plugins.StateFile), so neither loses what the other learned. Between
// updates a process answers from its own copy, which may lag the other's
// learning by the outcomes it has not seen.
//
// Config (study.yaml plugins[].config):
//
//	reward      {below: 5} or {above: 7}: what counts as a success
//	prior       [alpha, beta] of both levels' Beta prior (default [1, 1])
//	min, max    the plugin's own clip (default 0.1, 0.9)
//	state_file  file name in the data folder (default thompson-state.json)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/jitai/jitai/plugins"
	pb "github.com/jitai/jitai/plugins/proto"
)

const version = "thompson-beta-bernoulli/1.0.0"

// maxSeen bounds the remembered (decision, factor) pairs that already
// counted.
const maxSeen = 200000

type config struct {
	Reward struct {
		Below *float64 `json:"below"`
		Above *float64 `json:"above"`
	} `json:"reward"`
	Prior     []float64 `json:"prior"`
	Min       *float64  `json:"min"`
	Max       *float64  `json:"max"`
	StateFile string    `json:"state_file"`
}

// arm is a Beta posterior.
type arm struct {
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
}

// state is what is persisted.
type state struct {
	Version string            `json:"version"`
	Arms    map[string][2]arm `json:"arms"` // factor -> level 0, level 1
	Seen    []string          `json:"seen"` // decision/factor pairs counted, oldest first
	N       map[string][2]int `json:"n"`    // observations per factor and level

	seenSet map[string]bool
	cache   map[string]float64 // factor -> P(level 1 better), until the next update
}

type bandit struct {
	pb.UnimplementedProbabilityProviderServer
	mu    sync.Mutex
	cfg   config
	prior arm
	lo    float64
	hi    float64
	file  *plugins.StateFile
	st    state
}

func newState(st *state) state {
	if st == nil {
		st = &state{}
	}
	st.Version = version
	if st.Arms == nil {
		st.Arms = map[string][2]arm{}
	}
	if st.N == nil {
		st.N = map[string][2]int{}
	}
	st.seenSet = make(map[string]bool, len(st.Seen))
	for _, k := range st.Seen {
		st.seenSet[k] = true
	}
	st.cache = map[string]float64{}
	return *st
}

// reload replaces the in-memory state with the file's: another process of
// this plugin (a study version being retired or just started by a hot
// reload) has learned since.
func (b *bandit) reload(raw []byte) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	b.st = newState(&st)
	return nil
}

func (b *bandit) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := json.Unmarshal(req.ConfigJson, &b.cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if (b.cfg.Reward.Below == nil) == (b.cfg.Reward.Above == nil) {
		return nil, errors.New("config: reward needs exactly one of below or above")
	}
	b.prior = arm{1, 1}
	if len(b.cfg.Prior) == 2 && b.cfg.Prior[0] > 0 && b.cfg.Prior[1] > 0 {
		b.prior = arm{b.cfg.Prior[0], b.cfg.Prior[1]}
	}
	b.lo, b.hi = 0.1, 0.9
	if b.cfg.Min != nil {
		b.lo = *b.cfg.Min
	}
	if b.cfg.Max != nil {
		b.hi = *b.cfg.Max
	}
	if !(0 <= b.lo && b.lo <= b.hi && b.hi <= 1) {
		return nil, errors.New("config: min and max must satisfy 0 <= min <= max <= 1")
	}
	name := b.cfg.StateFile
	if name == "" {
		name = "thompson-state.json"
	}
	b.file = plugins.NewStateFile(filepath.Join(req.DataDir, filepath.Base(name)))
	b.st = newState(nil)
	if err := b.file.Update(b.reload, nil); err != nil {
		return nil, fmt.Errorf("reading state %s: %w", b.file.Path(), err)
	}
	return &pb.ConfigureResponse{Version: version}, nil
}

func (b *bandit) arms(factor string) [2]arm {
	a, ok := b.st.Arms[factor]
	if !ok {
		a = [2]arm{b.prior, b.prior}
	}
	return a
}

func (b *bandit) Probability(_ context.Context, req *pb.ProbabilityRequest) (*pb.ProbabilityResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.st.cache[req.Factor]
	if !ok {
		a := b.arms(req.Factor)
		p = probBetter(a[1], a[0])
		b.st.cache[req.Factor] = p
	}
	return &pb.ProbabilityResponse{Probability: math.Min(b.hi, math.Max(b.lo, p))}, nil
}

func (b *bandit) Outcome(_ context.Context, req *pb.OutcomeRequest) (*pb.OutcomeResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := req.GetDecision().GetDecisionId() + "/" + req.Factor
	if req.Level != 0 && req.Level != 1 {
		return &pb.OutcomeResponse{}, nil
	}
	// Learn on the freshest state: another process of this plugin may have
	// counted outcomes (even this one) since this process last saved.
	err := b.file.Update(b.reload, func() ([]byte, error) {
		if b.st.seenSet[key] {
			return nil, nil
		}
		b.learn(key, req)
		return json.Marshal(&b.st)
	})
	return &pb.OutcomeResponse{}, err
}

func (b *bandit) learn(key string, req *pb.OutcomeRequest) {
	success := false
	if b.cfg.Reward.Below != nil {
		success = req.Value < *b.cfg.Reward.Below
	} else {
		success = req.Value > *b.cfg.Reward.Above
	}
	a := b.arms(req.Factor)
	if success {
		a[req.Level].Alpha++
	} else {
		a[req.Level].Beta++
	}
	b.st.Arms[req.Factor] = a
	n := b.st.N[req.Factor]
	n[req.Level]++
	b.st.N[req.Factor] = n
	b.st.seenSet[key] = true
	b.st.Seen = append(b.st.Seen, key)
	if len(b.st.Seen) > maxSeen {
		delete(b.st.seenSet, b.st.Seen[0])
		b.st.Seen = b.st.Seen[1:]
	}
	delete(b.st.cache, req.Factor)
}

// probBetter is P(X > Y) for X ~ Beta(x), Y ~ Beta(y): the integral of
// pdf_X(t) * cdf_Y(t) over [0, 1], by the midpoint rule.
func probBetter(x, y arm) float64 {
	const n = 2000
	bx := distuv.Beta{Alpha: x.Alpha, Beta: x.Beta}
	by := distuv.Beta{Alpha: y.Alpha, Beta: y.Beta}
	sum := 0.0
	for i := 0; i < n; i++ {
		t := (float64(i) + 0.5) / n
		sum += bx.Prob(t) * by.CDF(t)
	}
	return math.Min(1, math.Max(0, sum/n))
}

func main() {
	if err := plugins.Serve(nil, &bandit{}, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
