package delivery_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/jitai/jitai/"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestChannelLayers: a channel package is an adapter at the edge. Of jitai
// it depends only on what engine/delivery does (the interface and
// engine/trial) and the channels' shared helpers, never on the service, a
// store, the kernel or OPA.
func TestChannelLayers(t *testing.T) {
	allowed := map[string]bool{"engine/delivery/internal/push": true}
	for _, dep := range deps(t, "engine/delivery") {
		allowed[strings.TrimPrefix(dep, module)] = true
	}
	for _, ch := range []string{"webhook", "fcm", "apns", "webpush"} {
		for _, dep := range deps(t, "engine/delivery/"+ch) {
			if strings.Contains(dep, "open-policy-agent") {
				t.Errorf("%s depends on %s", ch, dep)
			}
			rel, ok := strings.CutPrefix(dep, module)
			if !ok || rel == "engine/delivery/"+ch {
				continue
			}
			if !allowed[rel] {
				t.Errorf("%s depends on %s: a channel imports only engine/delivery and engine/trial", ch, rel)
			}
		}
	}
}
