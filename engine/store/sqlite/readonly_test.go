package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// A read-only store reads what a running writer committed, without taking
// the writer's lock, and refuses writes.
func TestOpenReadOnlyBesideWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	if _, err := OpenReadOnly(path, nil); err == nil {
		t.Fatal("opening a missing store read-only succeeded")
	}
	w, err := Open(path, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(path, Options{}, nil); err == nil {
		t.Fatal("a second writer got the lock")
	}
	p := &trial.Participant{Study: "s", ID: "p1", Timezone: "UTC", EnrolledAt: time.Now().UTC(), Status: trial.StatusActive}
	if _, _, err := w.Enroll(ctx, p, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Participants(ctx, "s")
	if err != nil || len(got) != 1 || got[0].ID != "p1" {
		t.Fatalf("read-only listing: %v %v", got, err)
	}
	p2 := &trial.Participant{Study: "s", ID: "p2", Timezone: "UTC", EnrolledAt: time.Now().UTC(), Status: trial.StatusActive}
	if _, _, err := w.Enroll(ctx, p2, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Participants(ctx, "s"); len(got) != 2 {
		t.Fatalf("read-only store does not see the writer's new commit: %d participants", len(got))
	}
	p3 := &trial.Participant{Study: "s", ID: "p3", Timezone: "UTC", EnrolledAt: time.Now().UTC(), Status: trial.StatusActive}
	if _, _, err := r.Enroll(ctx, p3, func(int64) error { return nil }); !errors.Is(err, errReadOnly) {
		t.Fatalf("write on a read-only store: %v", err)
	}
}
