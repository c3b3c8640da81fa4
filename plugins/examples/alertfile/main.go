// Command alertfile is an example notifier plugin: it writes clinician
// alerts for safety decisions to a JSON-lines file in its data folder and,
// if configured, POSTs each alert to a webhook (e.g. the on-call service's
// intake). An alert the webhook refuses is reported as failed, and the
// engine retries it.
//
// Delivery is at least once, so alerts are deduplicated by id: an id already
// in the file is acknowledged without writing or posting it again.
//
// An alert holds the study, the pseudonymous participant id, the decision
// id and time and the safety reasons (rule names): enough for the study's
// clinician to look the participant up in the study's own records, nothing
// more.
//
// Erase removes a participant's alerts from the file (not from the webhook's
// receiver).
//
// Config: file (alerts.jsonl, in the data folder), webhook (URL, optional),
// webhook_timeout (3s).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jitai/jitai/plugins"
	"github.com/jitai/jitai/plugins/internal/filelock"
	pb "github.com/jitai/jitai/plugins/proto"
)

const version = "alertfile/1.0.0"

type config struct {
	File           string `json:"file"`
	Webhook        string `json:"webhook"`
	WebhookTimeout string `json:"webhook_timeout"`
}

// Alert is one line of the alerts file and the webhook's body.
type Alert struct {
	ID            string    `json:"id"`
	Study         string    `json:"study"`
	Participant   string    `json:"participant_id"`
	DecisionID    string    `json:"decision_id"`
	DecisionPoint string    `json:"decision_point"`
	Time          time.Time `json:"time"`
	Action        string    `json:"action"`
	Reasons       []string  `json:"reasons"`
	Attempt       int32     `json:"attempt"`
	ReceivedAt    time.Time `json:"received_at"`
}

type notifier struct {
	pb.UnimplementedNotifierServer
	mu     sync.Mutex
	path   string
	hook   string
	client *http.Client
	seen   map[string]bool
}

func (n *notifier) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cfg := config{File: "alerts.jsonl", WebhookTimeout: "3s"}
	if err := json.Unmarshal(req.ConfigJson, &cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	timeout, err := time.ParseDuration(cfg.WebhookTimeout)
	if err != nil {
		return nil, fmt.Errorf("config: webhook_timeout: %w", err)
	}
	n.path = filepath.Join(req.DataDir, filepath.Base(cfg.File))
	n.hook = cfg.Webhook
	n.client = &http.Client{Timeout: timeout}
	n.seen = map[string]bool{}
	f, err := os.Open(n.path)
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var a Alert
			if json.Unmarshal(sc.Bytes(), &a) == nil {
				n.seen[a.ID] = true
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return &pb.ConfigureResponse{Version: version}, nil
}

func (n *notifier) Notify(ctx context.Context, req *pb.NotifyRequest) (*pb.NotifyResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[req.Id] {
		return &pb.NotifyResponse{}, nil
	}
	d := req.GetDecision()
	a := Alert{ID: req.Id, Study: d.GetStudy(), Participant: d.GetParticipant(), DecisionID: d.GetDecisionId(), DecisionPoint: d.GetDecisionPoint(),
		Time: time.Unix(0, d.GetTimeUnixNano()).UTC(), Action: req.Action, Reasons: req.Reasons, Attempt: req.Attempt, ReceivedAt: time.Now().UTC()}
	line, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if n.hook != "" {
		if err := n.post(ctx, line); err != nil {
			return nil, err
		}
	}
	// Another process of this plugin (during a study's hot reload) may
	// append or rewrite the file too.
	lock, err := filelock.Acquire(n.path + ".lock")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	f, err := os.OpenFile(n.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	n.seen[req.Id] = true
	return &pb.NotifyResponse{}, nil
}

// Erase rewrites the alerts file without the participant's alerts
// (temporary file, fsync, rename). Alerts already posted to the webhook
// are the receiving system's to erase.
func (n *notifier) Erase(_ context.Context, req *pb.EraseRequest) (*pb.EraseResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lock, err := filelock.Acquire(n.path + ".lock")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	raw, err := os.ReadFile(n.path)
	if errors.Is(err, os.ErrNotExist) {
		return &pb.EraseResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	quoted, _ := json.Marshal(req.Participant)
	var kept []byte
	dropped := false
	for line := range bytes.Lines(raw) {
		var a Alert
		theirs := bytes.Contains(line, quoted) // an unreadable line naming them goes too
		if json.Unmarshal(line, &a) == nil {
			theirs = a.Participant == req.Participant
		}
		if theirs {
			dropped = true
			continue
		}
		kept = append(kept, line...)
	}
	if !dropped {
		return &pb.EraseResponse{}, nil
	}
	tmp := n.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(kept)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, n.path)
	}
	if err != nil {
		return nil, err
	}
	return &pb.EraseResponse{}, nil
}

func (n *notifier) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.hook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

func main() {
	if err := plugins.Serve(nil, nil, &notifier{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
