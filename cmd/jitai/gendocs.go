package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenDocsCmd is the hidden `jitai gen-docs DIR`: the CLI reference, one
// Markdown file per command (make docs writes docs/cli).
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write the CLI reference, one Markdown file per command, into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			return writeDocs(cmd.Root(), args[0])
		},
	}
}

// writeDocs writes the Markdown reference of root's command tree into dir.
func writeDocs(root *cobra.Command, dir string) error {
	disableAutoGenTag(root)
	if err := doc.GenMarkdownTree(root, dir); err != nil {
		return fmt.Errorf("writing the CLI reference: %w", err)
	}
	return nil
}

// disableAutoGenTag drops the dated "Auto generated" line from the page of
// c and of every command under it, so the pages change only with the
// commands.
func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, sub := range c.Commands() {
		disableAutoGenTag(sub)
	}
}
