package policytest_test

import (
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/policies/policytest"
)

const study = `id: pt
name: policytest
timezone: Europe/London
seed: "pt-seed-0123456789"
decision_points:
  - {id: app, kind: app}
crisis:
  text: "Call 116 123."
`

func policy(reason string) string {
	return `package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [],
	"candidates": [{"id": "box-breathing", "weight": 1, "reason": "` + reason + `"}],
}
`
}

// WriteFiles returns the revision the folder loads as, also when it keeps
// the study.yaml already there, and WriteStudy loads what it wrote.
func TestWriteFilesRevision(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pt")
	revA := policytest.WriteFiles(t, dir, study, policy("a"))
	if s := policytest.WriteStudy(t, dir, study, policy("a")); s.Revision != revA || s.Config.ID != "pt" {
		t.Fatalf("loaded %s revision %s, WriteFiles said %s", s.Config.ID, s.Revision, revA)
	}
	revB := policytest.WriteFiles(t, dir, "", policy("b"))
	if revB == revA {
		t.Fatal("a changed policy kept its revision")
	}
	if s := policytest.WriteStudy(t, dir, study, policy("b")); s.Revision != revB {
		t.Fatalf("loaded revision %s, WriteFiles said %s", s.Revision, revB)
	}
}
