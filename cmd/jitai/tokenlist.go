package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/auth"
)

// newTokenListCmd is `jitai token list`.
func newTokenListCmd(tp *tokenParams) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tokens: id, name, role, studies, created, revoked",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := auth.Load(tp.path(cmd.Flags()))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTUDIES\tCREATED\tREVOKED")
			for _, t := range ts {
				rev := "-"
				if t.RevokedAt != nil {
					rev = t.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, studiesText(t.Studies), t.CreatedAt.Format(time.RFC3339), rev)
			}
			return tw.Flush()
		},
	}
}
