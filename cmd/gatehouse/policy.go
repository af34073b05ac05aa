package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/iam/simulate"
)

// newPolicyCmd is `gatehouse policy`: tools for the AWS IAM policy language.
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with AWS IAM policies",
	}
	cmd.AddCommand(newPolicySimulateCmd())
	return cmd
}

func newPolicySimulateCmd() *cobra.Command {
	var o simulate.Options
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Evaluate one request against IAM policies and explain the decision",
		Long: `Evaluate one request against identity policies, optional session policies and
an optional permissions boundary, with AWS evaluation logic, and print the
decision, the deciding statement and the reason.

Each --policy, --session-policy and --boundary is a file name or inline JSON.
--context key=value adds a condition key; repeat a key for several values.
aws:CurrentTime and aws:EpochTime default to now.

Exit status: 0 allow, 1 deny, 2 invalid input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Now = time.Now()
			code := simulate.Run(o, os.ReadFile, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if code != simulate.ExitAllow {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.Policies, "policy", nil, "identity policy: FILE or inline JSON (repeatable)")
	f.StringArrayVar(&o.SessionPolicies, "session-policy", nil, "session policy: FILE or inline JSON (repeatable)")
	f.StringArrayVar(&o.Boundaries, "boundary", nil, "permissions boundary: FILE or inline JSON")
	f.StringVar(&o.Action, "action", "", "action, such as s3:GetObject")
	f.StringVar(&o.Resource, "resource", "", "resource ARN, such as arn:aws:s3:::bucket/key")
	f.StringVar(&o.Principal, "principal", "", "caller ARN, matched against Principal elements")
	f.StringArrayVar(&o.Context, "context", nil, "condition key=value (repeatable; repeat a key for several values)")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	return cmd
}
