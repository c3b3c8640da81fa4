package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitai/jitai/engine/auth"
)

// tokenFileName is the token file under the data folder.
const tokenFileName = "tokens.json"

// auditFileName is the audit log under the data folder.
const auditFileName = "audit.jsonl"

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runToken manages API tokens in the token file, without a server.
func runToken(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: jitai token create --role app|designer|analyst|admin [--study ID]... [--name NAME] [--data DIR]\n       jitai token list [--data DIR]\n       jitai token revoke [--data DIR] ID|NAME")
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("JITAI_DATA", "data"), "data folder holding "+tokenFileName)
	file := fs.String("tokens-file", envOr("JITAI_TOKENS_FILE", ""), "token file (default DATA/"+tokenFileName+")")
	var studies stringList
	role := fs.String("role", "", "app | designer | analyst | admin (create)")
	name := fs.String("name", "", "a name for the token, e.g. phone-app (create)")
	fs.Var(&studies, "study", "study the token is bound to; repeat for several; none = every study (analyst and admin only) (create)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	path := *file
	if path == "" {
		path = filepath.Join(*data, tokenFileName)
	}
	switch args[0] {
	case "create":
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "jitai token create: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
		plain, t, err := auth.Create(path, *name, auth.Role(*role), studies, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "jitai token create: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "created token %s (%s, role %s, studies %s) in %s; it is shown once, store it now:\n", t.ID, t.Name, t.Role, studiesText(t.Studies), path)
		fmt.Fprintln(stdout, plain)
		return 0
	case "list":
		ts, err := auth.Load(path)
		if err != nil {
			fmt.Fprintf(stderr, "jitai token list: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTUDIES\tCREATED\tREVOKED")
		for _, t := range ts {
			rev := "-"
			if t.RevokedAt != nil {
				rev = t.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, studiesText(t.Studies), t.CreatedAt.Format(time.RFC3339), rev)
		}
		_ = tw.Flush()
		return 0
	case "revoke":
		if fs.NArg() != 1 {
			usage()
			return 2
		}
		t, err := auth.Revoke(path, fs.Arg(0), time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "jitai token revoke: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s (%s); a running server stops accepting it at its next request\n", t.ID, t.Name)
		return 0
	}
	usage()
	return 2
}

func studiesText(s []string) string {
	if len(s) == 0 {
		return "all"
	}
	return strings.Join(s, ",")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
