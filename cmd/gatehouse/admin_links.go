package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// ---- federated links and provider binding rules ----
// (docs/design/0014-identity-binding.md)

type cliLink struct {
	ProviderID  string    `json:"providerId"`
	ProviderARN string    `json:"providerArn"`
	Subject     string    `json:"subject"`
	UserID      string    `json:"userId"`
	UserName    string    `json:"userName"`
	Source      string    `json:"source"`
	CreatedAt   time.Time `json:"createdAt"`
}

func printLink(w io.Writer, l *cliLink) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("Provider", l.ProviderARN)
	kv("Subject", l.Subject)
	kv("User", l.UserName+" ("+l.UserID+")")
	kv("Source", l.Source)
	kv("Created", fmtTime(&l.CreatedAt))
	_ = tw.Flush()
}

type cliBinding struct {
	Binding struct {
		LinkByUserName bool   `json:"linkByUserName"`
		TrustEmail     bool   `json:"trustEmail"`
		Unlinked       string `json:"unlinked"`
		SCIMSubject    string `json:"scimSubject"`
	} `json:"binding"`
	ARN string `json:"arn"`
}

func printBinding(w io.Writer, b *cliBinding) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	unlinked := b.Binding.Unlinked
	if unlinked == "" {
		unlinked = "refuse"
	}
	kv("Provider", b.ARN)
	kv("Link by user name", fmt.Sprint(b.Binding.LinkByUserName))
	kv("Link by verified e-mail", fmt.Sprint(b.Binding.TrustEmail))
	kv("Unlinked identities", unlinked)
	kv("SCIM subject attribute", b.Binding.SCIMSubject)
	_ = tw.Flush()
}

func adminLinksCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "links", Short: "Manage federated links ((provider, subject) -> user) and providers' binding rules"}

	var lf struct{ provider, user string }
	list := listCmd(o, "List federated links", "federatedLinks",
		func() string { return withQuery("/api/v1/federated-links", "provider", lf.provider, "user", lf.user) },
		[]string{"PROVIDER", "SUBJECT", "USER", "SOURCE"},
		func(l *cliLink) []string { return []string{l.ProviderARN, l.Subject, l.UserName, l.Source} })
	list.Flags().StringVar(&lf.provider, "provider", "", "only links of this provider (id, SAML name or OIDC issuer URL)")
	list.Flags().StringVar(&lf.user, "user", "", "only links of this user (id or name)")

	var cf struct{ provider, subject, user string }
	create := &cobra.Command{
		Use:   "create --provider PROVIDER --subject SUBJECT --user USER",
		Short: "Link a provider's subject to a person",
		Long: `Link the identity SUBJECT (the SAML NameID or OIDC sub, exactly as the IdP
sends it) of PROVIDER (id, SAML name or OIDC issuer URL) to the directory user
USER. Federated sign-in binds only by (provider, subject). A linked subject, or
a user already linked to another subject of that provider, is refused: delete
the old link first.

  gatehouse admin links create --provider okta --subject 00u1abcd --user alice`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := map[string]any{"provider": cf.provider, "subject": cf.subject, "user": cf.user}
			return adminCall(o, cmd, "POST", "/api/v1/federated-links", body, printLink)
		},
	}
	for _, f := range []struct {
		p          *string
		name, help string
	}{{&cf.provider, "provider", "provider id, SAML name or OIDC issuer URL (required)"},
		{&cf.subject, "subject", "SAML NameID or OIDC sub (required)"}, {&cf.user, "user", "user id or name (required)"}} {
		create.Flags().StringVar(f.p, f.name, "", f.help)
		_ = create.MarkFlagRequired(f.name)
	}

	var df struct{ provider, subject string }
	del := &cobra.Command{
		Use: "delete --provider PROVIDER --subject SUBJECT", Short: "Remove a federated link", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.noContentCall(cmd, "DELETE", withQuery("/api/v1/federated-links", "provider", df.provider, "subject", df.subject),
				nil, "deleted link of "+df.subject)
		},
	}
	del.Flags().StringVar(&df.provider, "provider", "", "provider id, SAML name or OIDC issuer URL (required)")
	del.Flags().StringVar(&df.subject, "subject", "", "SAML NameID or OIDC sub (required)")
	_ = del.MarkFlagRequired("provider")
	_ = del.MarkFlagRequired("subject")

	cmd.AddCommand(list, create, del, adminLinkRuleCmd(o))
	return cmd
}

// adminLinkRuleCmd sets a provider's binding rule; PROVIDER is a SAML
// provider's id or name, or an OIDC provider's id.
func adminLinkRuleCmd(o *adminOpts) *cobra.Command {
	var rf struct {
		byName, email bool
		unlinked      string
		scim          string
	}
	cmd := &cobra.Command{
		Use:   "rule PROVIDER [--link-by-username] [--trust-email] [--unlinked refuse|federated] [--scim-subject userName|externalId]",
		Short: "Set how a provider's identities bind to users on first sign-in",
		Long: `Replace PROVIDER's binding rule (every flag not given is reset). By default a
provider binds only explicitly linked subjects and refuses the rest.

  --link-by-username  a first sign-in links the subject to the person whose
                      user name equals the IdP's user name claim; only for
                      IdPs whose user names the organization assigns
  --trust-email       a first sign-in links the subject to the one person with
                      that e-mail address, when the IdP says it is verified
  --unlinked          refuse (default), or federated: an STS session of its
                      own with no directory user's privileges
  --scim-subject      the SCIM attribute that carries this IdP's subject`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			body := map[string]any{"linkByUserName": rf.byName, "trustEmail": rf.email, "unlinked": rf.unlinked, "scimSubject": rf.scim}
			path := "/api/v1/saml-providers/" + pathEsc(args[0]) + "/binding"
			var se *serverError
			if _, err := c.do(cmd.Context(), "GET", "/api/v1/saml-providers/"+pathEsc(args[0]), nil, nil); errors.As(err, &se) && se.Status == http.StatusNotFound {
				path = "/api/v1/oidc-providers/" + pathEsc(args[0]) + "/binding"
			} else if err != nil {
				return err
			}
			return adminCallWith(o, cmd, c, "PUT", path, body, printBinding)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&rf.byName, "link-by-username", false, "link first sign-ins by user name")
	f.BoolVar(&rf.email, "trust-email", false, "link first sign-ins by verified e-mail address")
	f.StringVar(&rf.unlinked, "unlinked", "refuse", "refuse or federated")
	f.StringVar(&rf.scim, "scim-subject", "", "userName or externalId")
	return cmd
}
