package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/api/apiclient"
)

// ---- federated links and provider binding rules ----
// (docs/design/0014-identity-binding.md)

func printLink(w io.Writer, l *apiclient.FederatedLink) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("Provider", l.ProviderARN)
	kv("Subject", l.Subject)
	kv("User", deref(l.UserName)+" ("+l.UserID+")")
	kv("Source", string(l.Source))
	kv("Created", fmtTime(&l.CreatedAt))
	_ = tw.Flush()
}

// printBinding prints the binding rule b of the provider arn.
func printBinding(w io.Writer, arn string, b *apiclient.ProviderBinding) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	rule := deref(b)
	unlinked := string(deref(rule.Unlinked))
	if unlinked == "" {
		unlinked = "refuse"
	}
	kv("Provider", arn)
	kv("Link by user name", fmt.Sprint(deref(rule.LinkByUserName)))
	kv("Link by verified e-mail", fmt.Sprint(deref(rule.TrustEmail)))
	kv("Unlinked identities", unlinked)
	kv("SCIM subject attribute", string(deref(rule.SCIMSubject)))
	_ = tw.Flush()
}

func adminLinksCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "links", Short: "Manage federated links ((provider, subject) -> user) and providers' binding rules"}

	var lf struct{ provider, user string }
	list := listCmd(o, "List federated links",
		func() apiCall {
			p := &apiclient.ListFederatedLinksParams{Provider: optional(lf.provider), User: optional(lf.user)}
			return bind1((*apiclient.Client).ListFederatedLinks, p)
		},
		func(l *apiclient.FederatedLinkList) []apiclient.FederatedLink { return l.FederatedLinks },
		[]string{"PROVIDER", "SUBJECT", "USER", "SOURCE"},
		func(l *apiclient.FederatedLink) []string {
			return []string{l.ProviderARN, l.Subject, deref(l.UserName), string(l.Source)}
		})
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
			body := apiclient.FederatedLinkCreate{Provider: cf.provider, Subject: cf.subject, User: cf.user}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateFederatedLink, body), printLink)
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
			p := &apiclient.DeleteFederatedLinkParams{Provider: df.provider, Subject: df.subject}
			return o.noContentCall(cmd, bind1((*apiclient.Client).DeleteFederatedLink, p), "deleted link of "+df.subject)
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
			ctx, id := cmd.Context(), args[0]
			unlinked, scim := apiclient.ProviderBindingPutUnlinked(rf.unlinked), apiclient.ProviderBindingPutSCIMSubject(rf.scim)
			body := apiclient.ProviderBindingPut{LinkByUserName: &rf.byName, TrustEmail: &rf.email, Unlinked: &unlinked, SCIMSubject: &scim}
			var se *serverError
			res, err := c.api.GetSAMLProvider(ctx, id)
			if _, err := c.read(res, err, nil); errors.As(err, &se) && se.Status == http.StatusNotFound {
				return adminCallWith(o, cmd, c, bind2((*apiclient.Client).PutOIDCProviderBinding, id, body), func(w io.Writer, p *apiclient.OIDCProvider) { printBinding(w, p.ARN, p.Binding) })
			} else if err != nil {
				return err
			}
			return adminCallWith(o, cmd, c, bind2((*apiclient.Client).PutSAMLProviderBinding, id, body), func(w io.Writer, p *apiclient.SAMLProvider) { printBinding(w, p.ARN, p.Binding) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&rf.byName, "link-by-username", false, "link first sign-ins by user name")
	f.BoolVar(&rf.email, "trust-email", false, "link first sign-ins by verified e-mail address")
	f.StringVar(&rf.unlinked, "unlinked", "refuse", "refuse or federated")
	f.StringVar(&rf.scim, "scim-subject", "", "userName or externalId")
	return cmd
}
