package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// demoUser is one seeded person of the demo organization. Demo passwords are
// public by design: the demo binds to loopback only and is not for real data.
type demoUser struct {
	userName, given, family, title, password string
	attrs                                    map[string][]string
	groups                                   []string
}

var demoUsers = []demoUser{
	{"alice", "Alice", "Analyst", "Data analyst", "alice-demo-pw",
		map[string][]string{"region": {"EU"}, "department": {"analytics"}, "purpose": {"fraud-detection", "reporting"}},
		[]string{"analysts", "eu-staff"}},
	{"bob", "Bob", "Hr", "HR partner", "bob-demo-pw",
		map[string][]string{"region": {"US"}, "department": {"hr"}},
		[]string{"hr"}},
	{"carol", "Carol", "Privacy", "Privacy officer", "carol-demo-pw",
		map[string][]string{"region": {"EU"}, "department": {"legal"}, "clearance": {"pii"}},
		[]string{"privacy-officers", "eu-staff"}},
}

// demoGroups lists the demo groups; "staff" nests the others to show
// transitive membership.
var demoGroups = []struct {
	name   string
	nested []string
}{
	{"analysts", nil},
	{"hr", nil},
	{"privacy-officers", nil},
	{"eu-staff", nil},
	{"staff", []string{"analysts", "hr", "privacy-officers"}},
}

func newDemoCmd() *cobra.Command {
	var cf configFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run gatehouse on loopback with a seeded demo organization (no set-up needed)",
		Long: "Start the server on loopback with embedded defaults (SQLite and local files in --data-dir,\n" +
			"default ./gatehouse-demo), seed the demo organization (alice, bob, carol and their groups)\n" +
			"and print what to try next. Demo passwords are public: never use the demo for real data.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := cf.load(cmd,
				config.Override{Path: "data_dir", Value: "./gatehouse-demo"},
				config.Override{Path: "log.level", Value: "warn"},
				config.Override{Path: "s3.buckets", Value: "demo"},
			)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return runServer(cmd.Context(), cfg, func(s *server.Server) error {
				if err := seedDemo(cmd.Context(), s); err != nil {
					return fmt.Errorf("demo: seed: %w", err)
				}
				if err := renewDemoAdminToken(cmd.Context(), s, cfg.Identity.BootstrapToken); err != nil {
					return fmt.Errorf("demo: admin token: %w", err)
				}
				if err := s.EnableDemoIdP(cmd.Context()); err != nil {
					return fmt.Errorf("demo: demo IdP: %w", err)
				}
				if err := seedDemoObjects(cmd.Context(), s, cfg.STS.AccountID); err != nil {
					return fmt.Errorf("demo: objects: %w", err)
				}
				printDemoHelp(out, cfg, s)
				return nil
			})
		},
	}
	cf.register(cmd)
	return cmd
}

// seedDemo creates the demo organization. It is idempotent: existing users
// and groups are left as they are, so a restarted demo keeps its state.
func seedDemo(ctx context.Context, s *server.Server) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st := s.Store
	ids := map[string]string{}
	for _, du := range demoUsers {
		u, err := st.GetUserByName(ctx, du.userName)
		if errors.Is(err, store.ErrNotFound) {
			u = &store.User{
				Kind: store.KindUser, UserName: du.userName, Active: true,
				DisplayName: du.given + " " + du.family, GivenName: du.given, FamilyName: du.family,
				Title:      du.title,
				Emails:     []store.Email{{Value: du.userName + "@demo.gatehouse.test", Type: "work", Primary: true}},
				Attributes: du.attrs,
			}
			if err := st.CreateUser(ctx, u); err != nil {
				return err
			}
			if err := s.Identity.SetPassword(ctx, u.ID, du.password); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		ids["u:"+du.userName] = u.ID
	}
	for _, dg := range demoGroups {
		g, err := st.GetGroupByName(ctx, dg.name)
		if errors.Is(err, store.ErrNotFound) {
			g = &store.Group{DisplayName: dg.name}
			for _, du := range demoUsers {
				for _, gn := range du.groups {
					if gn == dg.name {
						g.Members = append(g.Members, store.Member{ID: ids["u:"+du.userName], Type: store.MemberUser})
					}
				}
			}
			for _, n := range dg.nested {
				g.Members = append(g.Members, store.Member{ID: ids["g:"+n], Type: store.MemberGroup})
			}
			if err := st.CreateGroup(ctx, g); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		ids["g:"+dg.name] = g.ID
	}
	return nil
}

// renewDemoAdminToken keeps a restarted demo usable. The bootstrap token
// ends after 24 h, or once it has made a real admin (design 0015), so when
// the token in path no longer authenticates, the demo issues the bootstrap
// principal a fresh one (same lifetime), audits it, and writes it over
// path (0600). A data dir without a token file (a second replica that did
// not bootstrap) gets none. DEMO ONLY: a real server never re-issues an
// admin token.
func renewDemoAdminToken(ctx context.Context, s *server.Server, path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.Identity.Authenticate(ctx, strings.TrimSpace(string(b))); err == nil {
		return nil
	}
	u, err := s.Store.GetUserByName(ctx, identity.BootstrapPrincipal)
	if err != nil {
		return err
	}
	raw, tok, err := s.Identity.CreateToken(ctx, nil, u.ID, "demo admin", identity.BootstrapTokenTTL)
	if err != nil {
		return err
	}
	ev := audit.NewEvent(s.Identity.Now, audit.CodeTokenCreated, "demo.token.create").Allow().
		Actor(audit.Actor{User: "system", AuthMethod: "system"}).
		Resource(audit.Resource{Type: "token", ID: tok.ID, Name: tok.Name}).
		Details(map[string]any{"principalId": u.ID, "principal": u.UserName, "expiresAt": tok.ExpiresAt,
			"reason": "demo restarted without a working admin token"}).Event()
	err = s.Audit.Emit(ctx, ev)
	if err == nil {
		err = os.WriteFile(path, []byte(raw+"\n"), 0o600)
	}
	if err != nil {
		if rerr := s.Identity.RevokeToken(ctx, tok.ID); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return os.Chmod(path, 0o600)
}

// demoObjects are the sample objects of the demo bucket.
var demoObjects = map[string]string{
	"shared/readme.txt":   "Welcome to the gatehouse demo bucket. Analysts read shared/, own home/<user>/, HR reads hr/.\n",
	"shared/sales.csv":    "region,quarter,revenue\nEU,Q3,1200000\nUS,Q3,1900000\n",
	"hr/salaries.csv":     "employee,salary\nalice,72000\nbob,68000\ncarol,81000\n",
	"home/alice/notes.md": "# alice's private notes\n",
	"home/bob/notes.md":   "# bob's private notes\n",
	"home/carol/notes.md": "# carol's private notes\n",
}

// seedDemoObjects fills the demo bucket (only objects that are missing, so
// a restarted demo keeps what users changed) and mounts hr/ on the
// hr-reader role: HR members reach it with any of their roles.
func seedDemoObjects(ctx context.Context, s *server.Server, account string) error {
	if s.Objects == nil {
		return nil // the S3 gateway is off (s3.listen empty)
	}
	for key, body := range demoObjects {
		if _, err := s.Objects.HeadObject(ctx, "demo", key); err == nil {
			continue
		} else if !errors.Is(err, backend.ErrNoSuchKey) {
			return err
		}
		meta := backend.Metadata{ContentType: "text/plain"}
		if strings.HasSuffix(key, ".csv") {
			meta.ContentType = "text/csv"
		}
		if _, err := s.Objects.PutObject(ctx, "demo", key, strings.NewReader(body), int64(len(body)), meta); err != nil {
			return err
		}
	}
	return seedDemoMount(ctx, s, account)
}

// seedDemoMount stores the hr/ mount (once: an existing demo/hr/ mount,
// possibly changed by an admin, is left alone) and loads it into the
// gateway.
func seedDemoMount(ctx context.Context, s *server.Server, account string) error {
	if s.MountStore == nil {
		return errors.New("the store cannot hold mounts")
	}
	all, err := s.MountStore.ListMounts(ctx)
	if err != nil {
		return err
	}
	exists := slices.ContainsFunc(all, func(m *store.Mount) bool { return m.Bucket == "demo" && m.Prefix == "hr/" })
	if !exists {
		err := s.MountStore.CreateMount(ctx, &store.Mount{ID: "demo-hr", Bucket: "demo", Prefix: "hr/",
			RoleARN: "arn:aws:iam::" + account + ":role/hr-reader", Description: "demo: HR data, read as hr-reader"})
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return err
		}
	}
	return s.ReloadMounts(ctx)
}

func printDemoHelp(w io.Writer, cfg config.Config, s *server.Server) {
	api := s.APIURL()
	tokenFile, _ := filepath.Abs(cfg.Identity.BootstrapToken)
	dataDir, _ := filepath.Abs(cfg.DataDir)
	fmt.Fprintf(w, `
gatehouse demo is running (DEMO ONLY: public passwords, loopback only).

  API      %[1]s        (REST /api/v1, SCIM /scim/v2)
  admin    http://%[2]s  (/livez /readyz /metrics)
  S3       %[5]s        (bucket demo: shared/, hr/ mounted on role hr-reader, home/<user>/)
  data     %[3]s

Demo organization:
  alice  analyst, region EU     groups analysts, eu-staff (and staff, through nesting)   password alice-demo-pw
  bob    HR partner, region US  group hr (and staff)                                      password bob-demo-pw
  carol  privacy officer, EU    groups privacy-officers, eu-staff (and staff)             password carol-demo-pw

Try next (in another terminal):

  go install ./cmd/gatehouse     # gatehouse into $(go env GOPATH)/bin; put that on your PATH
  export GATEHOUSE_SERVER=%[1]s
  export GATEHOUSE_TOKEN=$(cat %[4]s)
  # the bootstrap admin token: the demo keeps this file so that a restart can
  # renew the token (24 h); on a real server, delete it once it has made a real admin

  # who am I, and the directory
  gatehouse admin users list
  gatehouse admin groups list

  # log in as alice with her demo password
  curl -s -X POST $GATEHOUSE_SERVER/api/v1/login -H 'Content-Type: application/json' \
       -d '{"username":"alice","password":"alice-demo-pw"}'

  # SCIM, the way an IdP provisions: create a user, add to a group, deactivate
  curl -s -X POST $GATEHOUSE_SERVER/scim/v2/Users -H "Authorization: Bearer $GATEHOUSE_TOKEN" \
       -H 'Content-Type: application/scim+json' \
       -d '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave","active":true}'
  curl -s "$GATEHOUSE_SERVER/scim/v2/Groups?filter=displayName%%20eq%%20%%22analysts%%22" -H "Authorization: Bearer $GATEHOUSE_TOKEN"
  curl -s -X PATCH $GATEHOUSE_SERVER/scim/v2/Groups/<group-id> -H "Authorization: Bearer $GATEHOUSE_TOKEN" \
       -H 'Content-Type: application/scim+json' \
       -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"<dave-id>"}]}]}'
  curl -s -X PATCH $GATEHOUSE_SERVER/scim/v2/Users/<dave-id> -H "Authorization: Bearer $GATEHOUSE_TOKEN" \
       -H 'Content-Type: application/scim+json' \
       -d '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}'

  # credential passthrough: sign in (demo IdP, DEMO ONLY), pick a role, use any AWS client
  echo alice-demo-pw | gatehouse login --username alice --password-stdin
  gatehouse roles
  eval "$(gatehouse env)"        # credentials, region, S3 and STS endpoints (and an aws function for aws cli < 2.13)
  aws s3 ls                      # the buckets alice may list
  aws sts get-caller-identity

  # the S3 gateway, as alice (role analyst): shared/ and her own home/alice/, nothing else
  aws s3 ls s3://demo/shared/
  aws s3 cp s3://demo/shared/sales.csv -
  echo hello | aws s3 cp - s3://demo/home/alice/hello.txt
  aws s3 cp s3://demo/home/carol/notes.md -     # 403: not her home
  aws s3api get-object --bucket demo --key hr/salaries.csv /dev/null   # AccessDenied: alice is not HR; why?
  msg=$(aws s3api get-object --bucket demo --key hr/salaries.csv /dev/null 2>&1 | sed -n 's/.*message: //p')
  aws sts decode-authorization-message --encoded-message "$msg"
  # or let the aws cli fetch and refresh credentials itself (credential_process):
  printf '[default]\nregion = us-east-1\ncredential_process = gatehouse credential-process --role analyst\n' > /tmp/gh-demo-aws-config
  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/tmp/gh-demo-aws-config \
    aws --endpoint-url %[5]s s3 ls s3://demo/home/alice/
  # or sign in through the browser with SAML (the demo IdP at %[1]s/demo-idp/):
  #   gatehouse login --idp saml

  # the audit trail: verify the chain, search it
  gatehouse audit verify --data-dir %[3]s
  gatehouse audit search --data-dir %[3]s --action scim

Press Ctrl-C to stop (the audit log is flushed on exit).
`, api, s.AdminAddr(), dataDir, tokenFile, s.S3URL())
}
