// Package auth holds the API's bearer tokens and roles and its audit log.
//
// Tokens are random (32 bytes, base64url, prefix "jitai_") and shown once
// when created; the token file keeps only their SHA-256 hashes, with an id,
// a name, a role, the studies the token is bound to, and when it was
// created and revoked. The file is JSON, mode 0600, and is written by
// `jitai token create|list|revoke` without a server; a running server
// notices changes (and re-reads it on SIGHUP through Reload), so a
// revocation takes effect without a restart.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Role is what a token may do.
type Role string

// Roles. Admin may do everything.
const (
	RoleApp      Role = "app"      // enrol, events, decisions, read a participant
	RoleDesigner Role = "designer" // read studies (reload, simulate, replay, explain when served)
	RoleAnalyst  Role = "analyst"  // decisions listing and records, export, metrics
	RoleAdmin    Role = "admin"    // everything: withdrawal, erasure, tokens
)

// Roles lists the valid roles.
var Roles = []Role{RoleApp, RoleDesigner, RoleAnalyst, RoleAdmin}

// Prefix starts every token, so that a leaked one is easy to recognise.
const Prefix = "jitai_"

// Errors of Authenticate.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("the token is not valid")
	ErrRevoked      = errors.New("the token has been revoked")
)

// Token is one stored token (never its plaintext).
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Studies the token may act on; empty means every study, which only
	// analyst and admin tokens may have.
	Studies   []string   `json:"studies,omitempty"`
	Hash      string     `json:"sha256"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Revoked says whether the token has been revoked.
func (t *Token) Revoked() bool { return t.RevokedAt != nil }

// AllowsStudy says whether the token may act on study.
func (t *Token) AllowsStudy(study string) bool {
	return len(t.Studies) == 0 || slices.Contains(t.Studies, study)
}

// file is the token file's document.
type file struct {
	Tokens []*Token `json:"tokens"`
}

// ValidateRole checks a role and the studies it is bound to.
func ValidateRole(role Role, studies []string) error {
	if !slices.Contains(Roles, role) {
		return fmt.Errorf("role %q: want app, designer, analyst or admin", role)
	}
	if len(studies) == 0 && (role == RoleApp || role == RoleDesigner) {
		return fmt.Errorf("a %s token must be bound to studies: add --study ID", role)
	}
	for _, s := range studies {
		if strings.TrimSpace(s) == "" {
			return errors.New("a study id is empty")
		}
	}
	return nil
}

// Load reads the token file; a missing file holds no tokens.
func Load(path string) ([]*Token, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the token file: %w", err)
	}
	var f file
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("reading the token file %s: %w", path, err)
	}
	for i, t := range f.Tokens {
		if t == nil || t.ID == "" || len(t.Hash) != 2*sha256.Size || ValidateRole(t.Role, t.Studies) != nil {
			return nil, fmt.Errorf("token file %s: entry %d is malformed", path, i)
		}
	}
	return f.Tokens, nil
}

// save writes the tokens atomically with mode 0600.
func save(path string, tokens []*Token) error {
	raw, err := json.MarshalIndent(file{Tokens: tokens}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the token file's folder: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return fmt.Errorf("writing the token file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the token file: %w", err)
	}
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing the token file: %w", err)
	}
	return nil
}

// Hash is the stored form of a token: hex SHA-256.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Create adds a token to the file at path and returns its plaintext (shown
// once) and its stored entry. The file is read, changed and written under
// an exclusive lock file, so concurrent commands do not lose tokens.
func Create(path, name string, role Role, studies []string, now time.Time) (string, *Token, error) {
	if err := ValidateRole(role, studies); err != nil {
		return "", nil, err
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, fmt.Errorf("creating a token: %w", err)
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, fmt.Errorf("creating a token: %w", err)
	}
	plain := Prefix + base64.RawURLEncoding.EncodeToString(secret[:])
	t := &Token{ID: "tok_" + hex.EncodeToString(id[:]), Name: name, Role: role, Studies: studies, Hash: Hash(plain), CreatedAt: now.UTC()}
	err := update(path, func(ts []*Token) ([]*Token, error) { return append(ts, t), nil })
	if err != nil {
		return "", nil, err
	}
	return plain, t, nil
}

// Revoke marks the token with id (or, if no id matches, the one named
// name) revoked. Revoked tokens stay in the file for the record.
func Revoke(path, idOrName string, now time.Time) (*Token, error) {
	var out *Token
	err := update(path, func(ts []*Token) ([]*Token, error) {
		var byName []*Token
		for _, t := range ts {
			if t.ID == idOrName {
				out = t
			}
			if t.Name == idOrName && !t.Revoked() {
				byName = append(byName, t)
			}
		}
		if out == nil && len(byName) > 1 {
			return nil, fmt.Errorf("%d live tokens are named %q: revoke by id", len(byName), idOrName)
		}
		if out == nil && len(byName) == 1 {
			out = byName[0]
		}
		if out == nil {
			return nil, fmt.Errorf("no token with id or name %q", idOrName)
		}
		if !out.Revoked() {
			at := now.UTC()
			out.RevokedAt = &at
		}
		return ts, nil
	})
	return out, err
}

// update changes the token file under a lock file next to it.
func update(path string, change func([]*Token) ([]*Token, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the token file's folder: %w", err)
	}
	lock := path + ".lock"
	var lf *os.File
	for i := 0; ; i++ {
		var err error
		lf, err = os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i >= 50 {
			return fmt.Errorf("locking the token file (remove %s if no other jitai token command runs): %w", lock, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer func() { lf.Close(); os.Remove(lock) }()
	ts, err := Load(path)
	if err != nil {
		return err
	}
	ts, err = change(ts)
	if err != nil {
		return err
	}
	return save(path, ts)
}

// Verifier authenticates bearer tokens against the token file, re-reading
// it when its modification time or size changes. It is safe for concurrent
// use.
type Verifier struct {
	path string

	mu     sync.RWMutex
	tokens []*Token
	stamp  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// NewVerifier loads the token file at path.
func NewVerifier(path string) (*Verifier, error) {
	v := &Verifier{path: path}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Path is the token file's path.
func (v *Verifier) Path() string { return v.path }

// Reload re-reads the token file. On error the tokens loaded before stay in
// force.
func (v *Verifier) Reload() error {
	st := stampOf(v.path)
	ts, err := Load(v.path)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.tokens, v.stamp = ts, st
	v.mu.Unlock()
	return nil
}

// Len is the number of live (not revoked) tokens.
func (v *Verifier) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n := 0
	for _, t := range v.tokens {
		if !t.Revoked() {
			n++
		}
	}
	return n
}

// refresh reloads the file if it changed; a failed reload keeps the old
// tokens and returns the error.
func (v *Verifier) refresh() error {
	st := stampOf(v.path)
	v.mu.RLock()
	same := st == v.stamp
	v.mu.RUnlock()
	if same {
		return nil
	}
	return v.Reload()
}

// Authenticate returns the token whose hash matches plain. Every stored
// hash is compared in constant time, so timing tells nothing about which
// prefix matched. The second result is an error from reloading a changed
// token file (the previous tokens stayed in force), for the caller to log.
func (v *Verifier) Authenticate(plain string) (*Token, error, error) {
	reloadErr := v.refresh()
	if plain == "" {
		return nil, ErrNoToken, reloadErr
	}
	sum := sha256.Sum256([]byte(plain))
	want := hex.EncodeToString(sum[:])
	v.mu.RLock()
	defer v.mu.RUnlock()
	var found *Token
	for _, t := range v.tokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(want)) == 1 {
			found = t
		}
	}
	switch {
	case found == nil:
		return nil, ErrInvalidToken, reloadErr
	case found.Revoked():
		return nil, ErrRevoked, reloadErr
	}
	return found, nil, reloadErr
}
