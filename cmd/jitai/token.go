package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// tokenFileName is the token file under the data folder.
const tokenFileName = "tokens.json"

// auditFileName is the audit log under the data folder.
const auditFileName = "audit.jsonl"

// tokenParams are the flags every token subcommand shares.
type tokenParams struct {
	data       string
	tokensFile string
}

// path is the token file: --tokens-file (else JITAI_TOKENS_FILE), else
// tokens.json in --data (else JITAI_DATA, else data).
func (p *tokenParams) path(fs *pflag.FlagSet) string {
	file, data := p.tokensFile, p.data
	if !fs.Changed("tokens-file") {
		file = os.Getenv("JITAI_TOKENS_FILE")
	}
	if !fs.Changed("data") {
		data = envOr("JITAI_DATA", data)
	}
	if file != "" {
		return file
	}
	return filepath.Join(data, tokenFileName)
}

// newTokenCmd is `jitai token`: API tokens in the token file, managed
// without a server.
func newTokenCmd() *cobra.Command {
	p := &tokenParams{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Long: `Manage the API tokens of jitai serve --auth token in the token file (only
their hashes are stored), without a server. A running server picks up
changes at its next request.`,
		Args: cobra.NoArgs,
		RunE: groupRun,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&p.data, "data", "data", "data folder holding "+tokenFileName+", as for serve (env JITAI_DATA)")
	f.StringVar(&p.tokensFile, "tokens-file", "", "token file (default DATA/"+tokenFileName+"; env JITAI_TOKENS_FILE)")
	cmd.AddCommand(newTokenCreateCmd(p), newTokenListCmd(p), newTokenRevokeCmd(p))
	return cmd
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
