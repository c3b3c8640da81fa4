package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// AuditEntry is one line of the audit log: who did what to which study,
// and how it ended. It never holds participant data; an action on one
// participant names them by a keyed pseudonym of their id (see
// Audit.Pseudonym).
type AuditEntry struct {
	Time      time.Time      `json:"time"`
	TokenID   string         `json:"token_id,omitempty"`
	TokenName string         `json:"token_name,omitempty"`
	Role      Role           `json:"role,omitempty"`
	Action    string         `json:"action"`
	Route     string         `json:"route,omitempty"`
	Study     string         `json:"study,omitempty"`
	Outcome   string         `json:"outcome"`
	Status    int            `json:"status,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// Pseudonym names a participant in the audit log without their id:
// HMAC-SHA256, keyed by the audit's secret key, of study, NUL and
// participant id, hex. Without the key, trying every likely id (p-0001,
// p-0002, ...) finds nothing; with it, the pseudonym of a known id can be
// computed to find its entries. A nil *Audit gives "".
func (a *Audit) Pseudonym(study, participant string) string {
	if a == nil {
		return ""
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(study + "\x00" + participant))
	return hex.EncodeToString(m.Sum(nil))
}

// Audit appends entries to a JSONL file (opened O_APPEND, mode 0600) and
// logs each one. A nil *Audit only logs nothing.
type Audit struct {
	mu  sync.Mutex
	f   *os.File
	log *zap.Logger
	now func() time.Time
	key []byte // of Pseudonym
}

// MinAuditKey is the shortest pseudonym key OpenAudit accepts.
const MinAuditKey = 16

// OpenAudit opens (creating) the audit log at path; key is the secret of
// its participant pseudonyms (the engine keeps it with the data:
// engine.AuditKey).
func OpenAudit(path string, key []byte, log *zap.Logger) (*Audit, error) {
	if len(key) < MinAuditKey {
		return nil, errors.New("the audit log needs a pseudonym key of at least 16 bytes")
	}
	if log == nil {
		log = zap.NewNop()
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return &Audit{f: f, log: log, now: time.Now, key: key}, nil
}

// Record appends e (stamping its time) and logs it. A write error is
// returned and logged.
func (a *Audit) Record(e AuditEntry) error {
	if a == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = a.now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	_, err = a.f.Write(append(line, '\n'))
	a.mu.Unlock()
	a.log.Info("audit", zap.String("action", e.Action), zap.String("token_id", e.TokenID), zap.String("token_name", e.TokenName),
		zap.String("role", string(e.Role)), zap.String("route", e.Route), zap.String("study", e.Study),
		zap.String("outcome", e.Outcome), zap.Int("status", e.Status), zap.Any("detail", e.Detail))
	if err != nil {
		a.log.Error("audit log write failed", zap.Error(err))
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// Close closes the file.
func (a *Audit) Close() error {
	if a == nil {
		return nil
	}
	return a.f.Close()
}
