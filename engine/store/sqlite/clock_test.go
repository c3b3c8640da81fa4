package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
)

// TestMigrateToClock: a store written before the trial clock (schema
// version 2) opens migrated, keeps its participants and serves the clock.
func TestMigrateToClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO participants (study, id, ord, stratum, seq, doc, state, version)
		VALUES ('s1', 'p1', 0, 'a', 0, '{"study":"s1","participant_id":"p1","timezone":"UTC","status":"active"}', '{}', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if err := s.Touch(ctx, "s1", "p1", at, at); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(ctx, "s1", "p1", &trial.Device{ID: "d1", Platform: "fcm", Token: "t"}); err != nil {
		t.Fatal(err)
	}
	p, err := s.UpdateParticipant(ctx, "s1", "p1", trial.ParticipantUpdate{Locale: ptr("en-GB")})
	if err != nil || p.Locale != "en-GB" || p.Timezone != "UTC" {
		t.Fatalf("UpdateParticipant after migration: %+v, %v", p, err)
	}
	var version int
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("user_version %d (%v), want %d", version, err, len(migrations))
	}
}

func ptr[T any](v T) *T { return &v }
