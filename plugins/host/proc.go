package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/plugins"
	pb "github.com/jitai/jitai/plugins/proto"
	"github.com/jitai/jitai/policies"
)

// proc is one plugin process, restarted when it dies.
type proc struct {
	study   string
	cfg     policies.PluginConfig
	exe     string
	sum     []byte
	dataDir string
	config  []byte
	o       *Options

	mu   sync.RWMutex
	cur  *conn
	ver  string
	kick chan struct{}
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}
}

// conn is one started process and its gRPC client.
type conn struct {
	client  *plugin.Client
	enr     pb.EnricherClient
	prob    pb.ProbabilityProviderClient
	notif   pb.NotifierClient
	started time.Time
}

func newProc(s *policies.Study, pc policies.PluginConfig, o *Options) (*proc, error) {
	p := &proc{study: s.Config.ID, cfg: pc, exe: pc.ExecutablePath(s.Dir), o: o, kick: make(chan struct{}, 1), done: make(chan struct{})}
	p.ctx, p.stop = context.WithCancel(context.Background())
	// The plugin runs in its data folder: resolve its path first.
	abs, err := filepath.Abs(p.exe)
	if err != nil {
		return nil, errorf(p, "resolving its path: %v", err)
	}
	p.exe = abs
	sum, err := expectedChecksum(s.Dir, &pc, p.exe)
	if err != nil {
		return nil, errorf(p, "%v", err)
	}
	p.sum = sum
	p.dataDir = filepath.Join(o.DataDir, s.Config.ID, pc.Name)
	if err := os.MkdirAll(p.dataDir, 0o700); err != nil {
		return nil, errorf(p, "creating its data folder: %v", err)
	}
	cfg := pc.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	if p.config, err = json.Marshal(cfg); err != nil {
		return nil, errorf(p, "config cannot be sent as JSON: %v", err)
	}
	return p, nil
}

// expectedChecksum is the pinned SHA-256 of the plugin's executable.
func expectedChecksum(studyDir string, pc *policies.PluginConfig, exe string) ([]byte, error) {
	if pc.Checksum != "" {
		return policies.ParseChecksum(pc.Checksum)
	}
	file := pc.ChecksumFile
	if !filepath.IsAbs(file) {
		file = filepath.Join(studyDir, file)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading checksum_file: %w", err)
	}
	base := filepath.Base(exe)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && filepath.Base(strings.TrimPrefix(fields[1], "*")) == base {
			return policies.ParseChecksum(fields[0])
		}
	}
	return nil, fmt.Errorf("checksum_file %s has no line for %s (sha256sum format: <hex>  <name>)", file, base)
}

// VerifyChecksum checks that the file at path has the SHA-256 want; the
// error names the file and both checksums.
func VerifyChecksum(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening plugin executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("reading plugin executable: %w", err)
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, want) {
		return fmt.Errorf("checksum mismatch: %s is sha256:%s but the study expects sha256:%s; refusing to run it (rebuild the plugin, or update the study's checksum after reviewing the new executable)",
			path, hex.EncodeToString(got), hex.EncodeToString(want))
	}
	return nil
}

// start verifies the executable and starts a process.
func (p *proc) start() error {
	if err := VerifyChecksum(p.exe, p.sum); err != nil {
		return errorf(p, "%v", err)
	}
	cmd := exec.Command(p.exe)
	cmd.Env = pluginEnv()
	cmd.Dir = p.dataDir
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  plugins.Handshake,
		Plugins:          plugins.PluginSet(),
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: p.sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     p.o.StartTimeout,
		Logger:           hcLogger(p.cfg.Name, p.o),
	})
	c, err := p.connect(client)
	if err != nil {
		client.Kill()
		return errorf(p, "%v", err)
	}
	p.mu.Lock()
	p.cur = c
	p.mu.Unlock()
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	p.o.Logger.Info("plugin started", zap.String("study", p.study), zap.String("plugin", p.cfg.Name), zap.String("kind", p.cfg.Kind),
		zap.String("version", p.version()), zap.String("sha256", hex.EncodeToString(p.sum)), zap.Int("pid", pid))
	return nil
}

func (p *proc) connect(client *plugin.Client) (*conn, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("starting: %w", err)
	}
	raw, err := rpc.Dispense(p.cfg.Kind)
	if err != nil {
		return nil, fmt.Errorf("the executable does not serve a %s plugin: %w", p.cfg.Kind, err)
	}
	c := &conn{client: client, started: time.Now()}
	req := &pb.ConfigureRequest{Study: p.study, Name: p.cfg.Name, ConfigJson: p.config, DataDir: p.dataDir}
	ctx, cancel := context.WithTimeout(p.ctx, p.o.StartTimeout)
	defer cancel()
	var resp *pb.ConfigureResponse
	switch x := raw.(type) {
	case pb.EnricherClient:
		c.enr = x
		resp, err = x.Configure(ctx, req)
	case pb.ProbabilityProviderClient:
		c.prob = x
		resp, err = x.Configure(ctx, req)
	case pb.NotifierClient:
		c.notif = x
		resp, err = x.Configure(ctx, req)
	default:
		return nil, fmt.Errorf("unexpected client %T", raw)
	}
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	p.mu.Lock()
	p.ver = resp.GetVersion()
	p.mu.Unlock()
	return c, nil
}

func (p *proc) current() *conn {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cur
}

func (p *proc) version() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ver
}

// supervise restarts the plugin when its process exits, with backoff.
func (p *proc) supervise() {
	defer close(p.done)
	backoff := p.o.MinBackoff
	tick := time.NewTicker(p.o.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		case <-p.kick:
		}
		c := p.current()
		if c != nil && !c.client.Exited() {
			continue
		}
		if c != nil {
			if time.Since(c.started) > p.o.MaxBackoff {
				backoff = p.o.MinBackoff
			}
			p.mu.Lock()
			p.cur = nil
			p.mu.Unlock()
			c.client.Kill()
			p.o.Logger.Warn("plugin exited; restarting", zap.String("study", p.study), zap.String("plugin", p.cfg.Name), zap.Duration("backoff", backoff))
		}
		if !sleepCtx(p.ctx, backoff) {
			return
		}
		if err := p.start(); err != nil {
			p.o.Logger.Error("plugin restart failed", zap.String("study", p.study), zap.String("plugin", p.cfg.Name), zap.Error(err))
			p.observe("restart", time.Now(), err)
			backoff = min(2*backoff, p.o.MaxBackoff)
			select {
			case p.kick <- struct{}{}:
			default:
			}
			continue
		}
		p.observe("restart", time.Now(), nil)
		backoff = min(2*backoff, p.o.MaxBackoff)
	}
}

func (p *proc) close() {
	p.stop()
	<-p.done
	p.mu.Lock()
	c := p.cur
	p.cur = nil
	p.mu.Unlock()
	if c != nil {
		c.client.Kill()
	}
}

// call runs one RPC within the plugin's deadline and classifies its error
// for the engine: context.DeadlineExceeded for a timeout,
// engine.ErrPluginUnavailable while the plugin is down.
func (p *proc) call(ctx context.Context, name string, fn func(context.Context, *conn) error) error {
	return p.callWithin(ctx, name, p.cfg.Timeout.Duration, fn)
}

// callWithin is call with the deadline timeout instead of the plugin's.
func (p *proc) callWithin(ctx context.Context, name string, timeout time.Duration, fn func(context.Context, *conn) error) error {
	start := time.Now()
	err := p.doCall(ctx, timeout, fn)
	p.observe(name, start, err)
	return err
}

func (p *proc) doCall(ctx context.Context, timeout time.Duration, fn func(context.Context, *conn) error) error {
	if p.ctx.Err() != nil {
		return errClosed
	}
	c := p.current()
	if c == nil {
		return fmt.Errorf("%w: %s is restarting", engine.ErrPluginUnavailable, p.cfg.Name)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := fn(cctx, c)
	if err == nil {
		return nil
	}
	switch st, _ := status.FromError(err); {
	case st.Code() == codes.DeadlineExceeded || errors.Is(cctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("plugin %s: no answer within %s: %w", p.cfg.Name, timeout, context.DeadlineExceeded)
	case st.Code() == codes.Unavailable || st.Code() == codes.Canceled && ctx.Err() == nil:
		select {
		case p.kick <- struct{}{}:
		default:
		}
		return fmt.Errorf("%w: %s: %s", engine.ErrPluginUnavailable, p.cfg.Name, st.Message())
	case st.Code() == codes.Canceled:
		return ctx.Err()
	}
	return fmt.Errorf("plugin %s: %w", p.cfg.Name, err)
}

// maxDerived bounds an enricher's answer (it becomes part of the policy
// input and of every decision record).
const maxDerived = 64 << 10

type enricher struct{ p *proc }

func (e enricher) Enrich(ctx context.Context, d decision.PluginDecision, input []byte) (map[string]any, error) {
	var out map[string]any
	err := e.p.call(ctx, "enrich", func(ctx context.Context, c *conn) error {
		resp, err := c.enr.Enrich(ctx, &pb.EnrichRequest{Decision: pbDecision(d), InputJson: input})
		if err != nil {
			return err
		}
		if len(resp.DerivedJson) > maxDerived {
			return fmt.Errorf("%w: derived variables of %d bytes (at most %d)", engine.ErrPluginInvalid, len(resp.DerivedJson), maxDerived)
		}
		if err := json.Unmarshal(resp.DerivedJson, &out); err != nil || out == nil {
			return fmt.Errorf("%w: derived_json is not a JSON object", engine.ErrPluginInvalid)
		}
		return nil
	})
	return out, err
}

type provider struct{ p *proc }

func (pr provider) Probability(ctx context.Context, d decision.PluginDecision, q engine.ProbabilityQuery) (float64, error) {
	var prob float64
	err := pr.p.call(ctx, "probability", func(ctx context.Context, c *conn) error {
		resp, err := c.prob.Probability(ctx, &pb.ProbabilityRequest{Decision: pbDecision(d), Factor: q.Factor, Min: q.Bounds[0], Max: q.Bounds[1], DefaultProbability: q.Default, InputJson: q.Input})
		if err != nil {
			return err
		}
		prob = resp.GetProbability()
		return nil
	})
	return prob, err
}

func (pr provider) Outcome(ctx context.Context, o engine.OutcomeReport) error {
	return pr.p.call(ctx, "outcome", func(ctx context.Context, c *conn) error {
		_, err := c.prob.Outcome(ctx, &pb.OutcomeRequest{
			Decision: pbDecision(o.Decision), Factor: o.Factor, Level: int32(o.Level), Probability: o.Probability, FromPlugin: o.FromPlugin,
			Outcome: o.Outcome, Value: o.Value, ObservedUnixNano: o.ObservedAt.UnixNano(),
		})
		return err
	})
}

// eraseTimeout is the least deadline of an Erase call: a plugin may have
// files to rewrite.
const eraseTimeout = 10 * time.Second

// erase asks the plugin to delete what it keeps about participant. A
// plugin that does not implement Erase keeps nothing per participant.
// The error never carries the plugin's own message (it could name the
// participant): only the plugin's name and the call's outcome.
func (p *proc) erase(ctx context.Context, participant string) error {
	req := &pb.EraseRequest{Study: p.study, Participant: participant}
	err := p.callWithin(ctx, "erase", max(p.cfg.Timeout.Duration, eraseTimeout), func(ctx context.Context, c *conn) error {
		var err error
		switch {
		case c.enr != nil:
			_, err = c.enr.Erase(ctx, req)
		case c.prob != nil:
			_, err = c.prob.Erase(ctx, req)
		case c.notif != nil:
			_, err = c.notif.Erase(ctx, req)
		}
		if status.Code(err) == codes.Unimplemented {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("plugin %s: erase: %s", p.cfg.Name, engine.PluginOutcome(err))
	}
	return nil
}

func pbDecision(d decision.PluginDecision) *pb.Decision {
	return &pb.Decision{Study: d.Study, Participant: d.Participant, DecisionId: d.DecisionID, DecisionPoint: d.DecisionPoint, TimeUnixNano: d.Time.UnixNano()}
}

// Verify checks, without starting anything, that every plugin the study
// declares is an executable file matching its pinned checksum.
func Verify(s *policies.Study) error {
	var errs []error
	for i := range s.Config.Plugins {
		pc := &s.Config.Plugins[i]
		exe := pc.ExecutablePath(s.Dir)
		sum, err := expectedChecksum(s.Dir, pc, exe)
		if err == nil {
			err = VerifyChecksum(exe, sum)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("study %s, plugin %s: %w", s.Config.ID, pc.Name, err))
		}
	}
	return errors.Join(errs...)
}
