package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/auth"
)

// tokenCreateParams are the flags of `jitai token create`.
type tokenCreateParams struct {
	role    string
	name    string
	studies []string
}

// newTokenCreateCmd is `jitai token create --role ROLE [--study ID]... [--name NAME]`.
func newTokenCreateCmd(tp *tokenParams) *cobra.Command {
	var p tokenCreateParams
	cmd := &cobra.Command{
		Use:   "create --role app|designer|analyst|admin",
		Short: "Create a token and print it once",
		Long: `Create a token with a role, bound to the given studies (none = every study,
for analyst and admin only). The token is printed once on stdout; only its
hash is stored.`,
		Example: `  jitai token create --role app --study stress-mrt --name phone-app
  jitai token create --role analyst --name stats-team`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := tp.path(cmd.Flags())
			plain, t, err := auth.Create(path, p.name, auth.Role(p.role), p.studies, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created token %s (%s, role %s, studies %s) in %s; it is shown once, store it now:\n", t.ID, t.Name, t.Role, studiesText(t.Studies), path)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), plain)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.role, "role", "", "app | designer | analyst | admin (required)")
	f.StringVar(&p.name, "name", "", "a name for the token, e.g. phone-app")
	f.StringArrayVar(&p.studies, "study", nil, "id of a study the token is bound to; repeat for several; none = every study (analyst and admin only)")
	return cmd
}
