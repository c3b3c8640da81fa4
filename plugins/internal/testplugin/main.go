// Command testplugin is the plugin the host's tests start: one executable
// that serves all three kinds, each behaving as its config says, so that
// tests can make a plugin answer, sleep past its deadline or fail.
//
// Config (JSON, from study.yaml's config:):
//
//	version      reported version (default "test/1")
//	derived      the enricher's answer (any JSON object)
//	probability  the provider's answer
//	sleep        a duration every Enrich and Probability call sleeps first
//	fail_notify  how many Notify attempts fail before one succeeds (-1: all)
//	notify_sleep a duration every Notify call sleeps first (a cancelled call
//	             fails without recording the notification)
//	fail_erase   how many Erase calls fail before one succeeds
//	echo_env     Enrich answers {"env": <the value of this environment variable>}
//
// Notifications that succeed are appended to notified.jsonl and outcomes
// to outcomes.jsonl, in the plugin's data folder.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/jitai/jitai/plugins"
	pb "github.com/jitai/jitai/plugins/proto"
)

type config struct {
	Version     string          `json:"version"`
	Derived     json.RawMessage `json:"derived"`
	Probability float64         `json:"probability"`
	Sleep       string          `json:"sleep"`
	FailNotify  int             `json:"fail_notify"`
	NotifySleep string          `json:"notify_sleep"`
	FailErase   int             `json:"fail_erase"`
	EchoEnv     string          `json:"echo_env"`
}

type server struct {
	pb.UnimplementedEnricherServer
	pb.UnimplementedProbabilityProviderServer
	pb.UnimplementedNotifierServer

	mu       sync.Mutex
	cfg      config
	sleep    time.Duration
	dir      string
	failures int
	erasures int
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := json.Unmarshal(req.ConfigJson, &s.cfg); err != nil {
		return nil, err
	}
	if s.cfg.Sleep != "" {
		d, err := time.ParseDuration(s.cfg.Sleep)
		if err != nil {
			return nil, err
		}
		s.sleep = d
	}
	s.dir = req.DataDir
	if s.cfg.Version == "" {
		s.cfg.Version = "test/1"
	}
	return &pb.ConfigureResponse{Version: s.cfg.Version}, nil
}

func (s *server) nap(ctx context.Context) {
	s.mu.Lock()
	d := s.sleep
	s.mu.Unlock()
	if d > 0 {
		// Ignores ctx on purpose: a slow plugin does not cooperate.
		time.Sleep(d)
	}
	_ = ctx
}

func (s *server) Enrich(ctx context.Context, _ *pb.EnrichRequest) (*pb.EnrichResponse, error) {
	s.nap(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.cfg.Derived
	if s.cfg.EchoEnv != "" {
		v, set := os.LookupEnv(s.cfg.EchoEnv)
		d, _ = json.Marshal(map[string]any{"env": v, "set": set})
	}
	if d == nil {
		d = json.RawMessage(`{}`)
	}
	return &pb.EnrichResponse{DerivedJson: d}, nil
}

func (s *server) Probability(ctx context.Context, _ *pb.ProbabilityRequest) (*pb.ProbabilityResponse, error) {
	s.nap(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return &pb.ProbabilityResponse{Probability: s.cfg.Probability}, nil
}

func (s *server) Outcome(_ context.Context, req *pb.OutcomeRequest) (*pb.OutcomeResponse, error) {
	return &pb.OutcomeResponse{}, s.appendJSON("outcomes.jsonl", req)
}

func (s *server) Notify(ctx context.Context, req *pb.NotifyRequest) (*pb.NotifyResponse, error) {
	if d, _ := time.ParseDuration(s.cfg.NotifySleep); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	fail := s.cfg.FailNotify < 0 || s.failures < s.cfg.FailNotify
	if fail {
		s.failures++
	}
	s.mu.Unlock()
	if fail {
		return nil, errors.New("notifier configured to fail")
	}
	return &pb.NotifyResponse{}, s.appendJSON("notified.jsonl", req)
}

// Erase records the request in erased.jsonl (the test plugin keeps
// nothing per participant to delete).
func (s *server) Erase(_ context.Context, req *pb.EraseRequest) (*pb.EraseResponse, error) {
	s.mu.Lock()
	s.erasures++
	fail := s.erasures <= s.cfg.FailErase
	s.mu.Unlock()
	if fail {
		return nil, errors.New("eraser configured to fail")
	}
	return &pb.EraseResponse{}, s.appendJSON("erased.jsonl", req)
}

func (s *server) appendJSON(name string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return err
}

func main() {
	s := &server{}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugins.Handshake,
		Plugins: plugin.PluginSet{
			plugins.KindEnricher:    &plugins.EnricherPlugin{Impl: s},
			plugins.KindProbability: &plugins.ProbabilityPlugin{Impl: s},
			plugins.KindNotifier:    &plugins.NotifierPlugin{Impl: s},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
