package memstore_test

import (
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/memstore"
	"github.com/jitai/jitai/engine/storetest"
)

func open(*testing.T) engine.Store { return memstore.New() }

// TestConformance runs the store conformance suite (no reopen: nothing is
// durable).
func TestConformance(t *testing.T) { storetest.Run(t, open, nil) }

// TestEraser runs the withdrawal and erasure suite.
func TestEraser(t *testing.T) { storetest.RunEraser(t, open) }
