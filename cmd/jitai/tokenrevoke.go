package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/auth"
)

// newTokenRevokeCmd is `jitai token revoke ID|NAME`.
func newTokenRevokeCmd(tp *tokenParams) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID|NAME",
		Short:   "Revoke a token; a running server refuses it from its next request",
		Example: "  jitai token revoke phone-app",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := auth.Revoke(tp.path(cmd.Flags()), args[0], time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (%s); a running server stops accepting it at its next request\n", t.ID, t.Name)
			return err
		},
	}
}
