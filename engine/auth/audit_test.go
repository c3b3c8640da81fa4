package auth

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestPseudonymKeyed: the pseudonym depends on the key, the study and the
// id (with a separator, so "ab"+"c" is not "a"+"bc"), and OpenAudit refuses
// a missing or short key.
func TestPseudonymKeyed(t *testing.T) {
	dir := t.TempDir()
	open := func(name string, key []byte) *Audit {
		t.Helper()
		a, err := OpenAudit(filepath.Join(dir, name), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		return a
	}
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a1, a1again, a2 := open("a1.jsonl", k1), open("a1b.jsonl", k1), open("a2.jsonl", k2)
	p := a1.Pseudonym("stress-mrt", "p-0001")
	if len(p) != 64 {
		t.Fatalf("pseudonym %q is not 32 bytes of hex", p)
	}
	if a1again.Pseudonym("stress-mrt", "p-0001") != p {
		t.Error("the same key gives another pseudonym")
	}
	for what, other := range map[string]string{
		"another key":         a2.Pseudonym("stress-mrt", "p-0001"),
		"another id":          a1.Pseudonym("stress-mrt", "p-0002"),
		"another study":       a1.Pseudonym("mood-most", "p-0001"),
		"a shifted separator": a1.Pseudonym("stress-mrtp", "-0001"),
	} {
		if other == p {
			t.Errorf("%s gives the same pseudonym", what)
		}
	}
	for _, key := range [][]byte{nil, make([]byte, MinAuditKey-1)} {
		if _, err := OpenAudit(filepath.Join(dir, "short.jsonl"), key, nil); err == nil {
			t.Errorf("a key of %d bytes was accepted", len(key))
		}
	}
}
