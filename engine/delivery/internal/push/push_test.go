package push

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/trial"
)

func TestDevices(t *testing.T) {
	devs := []*trial.Device{
		{ID: "a", Platform: "fcm", Token: "t1"}, nil, {ID: "b", Platform: "apns", Token: "t2"},
		{ID: "c", Platform: "fcm"}, {ID: "d", Platform: "fcm", Token: "t3"},
	}
	got := Devices(devs, "fcm")
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "d" {
		t.Errorf("got %v", got)
	}
}

func TestTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expires time.Time
		ttl     time.Duration
		ok      bool
	}{
		{time.Time{}, time.Hour, true},
		{now.Add(90*time.Second + 700*time.Millisecond), 90 * time.Second, true},
		{now.Add(500 * time.Millisecond), 0, false},
		{now, 0, false},
		{now.Add(-time.Minute), -time.Minute, false},
	} {
		ttl, ok := TTL(now, tc.expires, time.Hour)
		if ttl != tc.ttl || ok != tc.ok {
			t.Errorf("TTL(%v) = %v, %v; want %v, %v", tc.expires, ttl, ok, tc.ttl, tc.ok)
		}
	}
}

func TestCollapseID(t *testing.T) {
	if got := CollapseID("dlv_01-AB", 32); got != "dlv_01-AB" {
		t.Errorf("kept: %q", got)
	}
	long := strings.Repeat("x", 40)
	for _, id := range []string{long, "with space", "a/b", ""} {
		got := CollapseID(id, 32)
		if len(got) != 32 || !isBase64URL(got) || got != CollapseID(id, 32) {
			t.Errorf("CollapseID(%q) = %q", id, got)
		}
	}
	if CollapseID(long, 32) == CollapseID(long+"y", 32) {
		t.Error("two ids collapse to one")
	}
}

func TestRedact(t *testing.T) {
	inner := fmt.Errorf("dial: %w", context.DeadlineExceeded)
	err := Redact(&url.Error{Op: "Post", URL: "https://push.example/sekrit", Err: inner}, "sekrit")
	if strings.Contains(err.Error(), "sekrit") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v", err)
	}
	err = Redact(errors.New("token abc123 refused"), "abc123", "")
	if err.Error() != "token [redacted] refused" {
		t.Errorf("got %v", err)
	}
	if Redact(nil, "x") != nil {
		t.Error("nil")
	}
}

func TestTally(t *testing.T) {
	var ok Tally
	ok.Fail("a", true, errors.New("gone"))
	ok.OK("m1")
	ok.OK("m2")
	if res, err := ok.Result("x"); err != nil || res.Devices != 2 || res.MessageID != "m1" {
		t.Errorf("sent: %+v, %v", res, err)
	}
	var perm Tally
	perm.Fail("a", true, errors.New("gone"))
	perm.Fail("b", true, errors.New("bad"))
	if _, err := perm.Result("x"); !delivery.IsPermanent(err) || !strings.Contains(err.Error(), `device "b": bad`) {
		t.Errorf("permanent: %v", err)
	}
	var retry Tally
	retry.Fail("a", true, errors.New("gone"))
	retry.Fail("b", false, fmt.Errorf("busy: %w", context.DeadlineExceeded))
	if _, err := retry.Result("x"); err == nil || delivery.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("retryable: %v", err)
	}
}
