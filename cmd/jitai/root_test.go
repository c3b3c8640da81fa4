package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths lists the argument paths of every command users can run
// (hidden ones included, cobra's internal __complete excluded).
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if strings.HasPrefix(sub.Name(), "__") {
				continue
			}
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRootCmd(deps{}, nil, io.Discard, io.Discard), nil)
	if len(paths) < 20 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	return paths
}

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = execute(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// TestEveryCommandHelp: --help of every command goes to stdout and exits
// 0; an unknown flag is a usage error on stderr with exit status 2.
func TestEveryCommandHelp(t *testing.T) {
	for _, path := range commandPaths(t) {
		name := strings.Join(append([]string{"jitai"}, path...), " ")
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runArgs(append(path, "--help")...)
			if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") {
				t.Errorf("--help: exit %d, stderr %q, stdout %q", code, errOut, out)
			}
			code, out, errOut = runArgs(append(path, "--no-such-flag")...)
			if code != 2 || out != "" || !strings.Contains(errOut, "unknown flag: --no-such-flag") || !strings.Contains(errOut, name+" --help") {
				t.Errorf("unknown flag: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

// TestUsageErrors: wrong arguments are usage errors (stderr, exit 2).
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "Available Commands:"},
		{[]string{"nosuch"}, `unknown command "nosuch" for "jitai"`},
		{[]string{"power"}, "Available Commands:"},
		{[]string{"power", "anova"}, `unknown command "anova" for "jitai power"`},
		{[]string{"study", "check"}, "accepts 1 arg(s), received 0"},
		{[]string{"study", "check", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"token", "revoke"}, "accepts 1 arg(s), received 0"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"serve", "--log-level", "loud"}, `log_level "loud"`},
		{[]string{"simulate"}, "--study-dir and --out are required"},
		{[]string{"simulate", "--study", "policies/examples/stress-mrt", "--out", "x"}, "unknown flag: --study"},
		{[]string{"assignments"}, "--study is required"},
		{[]string{"export", "--out", "x.csv"}, "--study and --out are required"},
		{[]string{"explain", "--study-dir", "x", "--data", "y"}, "give DECISION_ID (one; got 0 arguments)"},
		{[]string{"gen-docs"}, "accepts 1 arg(s), received 0"},
		{[]string{"version", "x"}, `unexpected argument "x"`},
	} {
		code, out, errOut := runArgs(c.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("jitai %s: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
}

// TestFailureExitsOne: a failure that is not a usage error exits 1, and
// says what to pass when the studies or data folder is missing.
func TestFailureExitsOne(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"assignments", "--study", "stress-mrt", "--studies", filepath.Join(dir, "nope")}, "pass --studies DIR"},
		{[]string{"serve", "--studies", filepath.Join(dir, "nope"), "--data", dir, "--addr", "127.0.0.1:0"}, "pass --studies DIR"},
		{[]string{"assignments", "--study", "stress-mrt", "--studies", examples, "--data", dir}, "pass --data DIR"},
		{[]string{"export", "--study", "stress-mrt", "--studies", examples, "--data", dir, "--out", filepath.Join(dir, "x.csv")}, "pass --data DIR"},
		{[]string{"token", "list", "--tokens-file", dir}, "jitai token list: "},
	} {
		code, out, errOut := runArgs(c.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("jitai %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
}

// TestVersion: --version and the version command print the same line.
func TestVersion(t *testing.T) {
	code, out, errOut := runArgs("--version")
	if code != 0 || errOut != "" || out != "jitai "+versionString()+"\n" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out2, _ := runArgs("version")
	if code != 0 || out2 != out {
		t.Errorf("version: exit %d, %q; --version said %q", code, out2, out)
	}
}

// TestDescribeBuild: the module version, then the VCS revision, time and
// whether the tree was modified.
func TestDescribeBuild(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/jitai/jitai", Version: "(devel)"}}
	if got := describeBuild(bi); got != "(devel) go1.26.8" {
		t.Errorf("no VCS: %q", got)
	}
	bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.time", Value: "2026-12-07T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}
	if got := describeBuild(bi); got != "(devel) (revision 0123abc, 2026-12-07T10:00:00Z, modified) go1.26.8" {
		t.Errorf("checkout: %q", got)
	}
	bi.Main.Version = "v1.2.3"
	bi.Settings = bi.Settings[:1]
	if got := describeBuild(bi); got != "v1.2.3 (revision 0123abc) go1.26.8" {
		t.Errorf("release: %q", got)
	}
}

// TestCompletion: cobra's completion scripts are there.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runArgs("completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, "jitai") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes", shell, code, errOut, len(out))
		}
	}
}

// TestCLIDocsUpToDate: docs/cli is what gen-docs writes for the commands
// (make docs regenerates it).
func TestCLIDocsUpToDate(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := runArgs("gen-docs", dir); code != 0 {
		t.Fatalf("gen-docs: exit %d: %s", code, errOut)
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	want, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil || len(want) == 0 {
		t.Fatalf("gen-docs wrote no pages (%v)", err)
	}
	have, _ := filepath.Glob(filepath.Join(committed, "*.md"))
	if len(have) != len(want) {
		t.Errorf("docs/cli has %d pages, the commands give %d: run make docs", len(have), len(want))
	}
	for _, p := range want {
		gen, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(gen, []byte("Auto generated")) {
			t.Errorf("%s carries the dated auto-generated line", filepath.Base(p))
		}
		old, err := os.ReadFile(filepath.Join(committed, filepath.Base(p)))
		if err != nil || !bytes.Equal(old, gen) {
			t.Errorf("docs/cli/%s differs from the commands: run make docs", filepath.Base(p))
		}
	}
}
