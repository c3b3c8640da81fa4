package engine

import (
	"context"
	"crypto/rand"
	"fmt"
)

// AuditKeyPinName names the audit log's pseudonym key among the pins of no
// study (study ""): a server-wide value, kept with the data.
const AuditKeyPinName = "audit-pseudonym-key"

// auditKeyBytes is the length of a new audit pseudonym key.
const auditKeyBytes = 32

// AuditKey returns the secret key of the audit log's participant
// pseudonyms (auth.Audit.Pseudonym). It is made of random bytes at the
// first start and pinned in the store (trial.Pins: the first writer wins),
// so that it stays with the data, never in the repository or a config
// file, and every engine on a shared store uses the same key: one
// participant has one pseudonym across restarts and replicas.
func (e *Engine) AuditKey(ctx context.Context) ([]byte, error) {
	if key, err := e.store.Pinned(ctx, "", AuditKeyPinName); err == nil && len(key) == auditKeyBytes {
		return key, nil
	}
	fresh := make([]byte, auditKeyBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("making the audit pseudonym key: %w", err)
	}
	key, err := e.store.Pin(ctx, "", AuditKeyPinName, fresh)
	if err != nil {
		return nil, fmt.Errorf("keeping the audit pseudonym key in the store: %w", err)
	}
	if len(key) != auditKeyBytes {
		return nil, fmt.Errorf("the store's audit pseudonym key has %d bytes, want %d", len(key), auditKeyBytes)
	}
	return key, nil
}
