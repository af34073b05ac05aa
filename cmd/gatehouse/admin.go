package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse-dev/gatehouse/internal/api/apiclient"
)

// adminOpts are the admin CLI's global flags.
type adminOpts struct {
	server    string
	token     string
	tokenFile string
	json      bool
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// newAdminCmd returns `gatehouse admin`, a client of the admin REST API of
// a running server.
func newAdminCmd() *cobra.Command {
	o := &adminOpts{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage users, groups, privileges, tokens, roles, identity providers and policies on a running gatehouse server",
		Long: `Manage users, groups, tokens, IAM roles, SAML/OIDC identity providers and
managed policies, and revoke STS sessions, through the admin REST API of a
running server.

The bearer token comes from --token, --token-file, $GATEHOUSE_TOKEN, or the
credentials stored by 'gatehouse login' for the server, in that order.`,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			cmd.SilenceUsage = true // usage on flag errors only, not server errors
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.server, "server", envOr("GATEHOUSE_SERVER", "http://127.0.0.1:8080"), "server base URL (env GATEHOUSE_SERVER)")
	pf.StringVar(&o.token, "token", "", "bearer token (env GATEHOUSE_TOKEN)")
	pf.StringVar(&o.tokenFile, "token-file", "", "read the bearer token from this file")
	pf.BoolVar(&o.json, "json", false, "print the server's JSON instead of a table")
	cmd.AddCommand(adminUsersCmd(o), adminGroupsCmd(o), adminTokensCmd(o), adminRolesCmd(o), adminProvidersCmd(o))
	cmd.AddCommand(adminPoliciesCmd(o), adminSessionsCmd(o), adminMountsCmd(o), adminDecodeAuthzCmd(o), adminLinksCmd(o))
	cmd.AddCommand(adminPrivilegesCmd(o))
	return cmd
}

// ---- client ----

// adminClient talks to a server's admin REST API through the client
// generated from api/openapi.yaml (internal/api/apiclient), and to the few
// web sign-in endpoints outside that document (/api/v1/me/..., /sso/...)
// through do. It is safe for concurrent use.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
	api   *apiclient.Client
}

// newAdminClient returns a client of the server at base (a checked
// serverBase) that sends token, if not empty, as its bearer token.
func newAdminClient(base, token string) *adminClient {
	c := &adminClient{base: base, token: token, hc: &http.Client{Timeout: 60 * time.Second}}
	// NewClient fails only for a failing option; WithHTTPClient never fails.
	c.api, _ = apiclient.NewClient(base+"/api/v1", apiclient.WithHTTPClient(c))
	return c
}

// serverError is an error answered by the server in the REST error shape.
type serverError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *serverError) Error() string {
	s := fmt.Sprintf("%s (%s, HTTP %d", e.Message, e.Code, e.Status)
	if e.RequestID != "" {
		s += ", request id " + e.RequestID
	}
	return s + ")"
}

// serverBase checks a --server value and returns it without trailing slashes.
func serverBase(server string) (string, error) {
	base := strings.TrimRight(server, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	return base, nil
}

func (o *adminOpts) client() (*adminClient, error) {
	base, err := serverBase(o.server)
	if err != nil {
		return nil, err
	}
	tok, err := o.resolveToken(base)
	if err != nil {
		return nil, err
	}
	return newAdminClient(base, tok), nil
}

func (o *adminOpts) resolveToken(base string) (string, error) {
	switch {
	case o.token != "":
		return o.token, nil
	case o.tokenFile != "":
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("read --token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case os.Getenv("GATEHOUSE_TOKEN") != "":
		return strings.TrimSpace(os.Getenv("GATEHOUSE_TOKEN")), nil
	}
	if c, err := loadCredentials(); err == nil {
		if e, ok := c.Servers[base]; ok && e.Token != "" {
			return e.Token, nil
		}
	}
	return "", errors.New("no token: pass --token or --token-file, set GATEHOUSE_TOKEN, or run 'gatehouse login'")
}

// Do sends req with the CLI's headers (and its bearer token, if any). It is
// the generated client's transport; a failure to reach the server names the
// request.
func (c *adminClient) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "gatehouse-cli/"+version)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, c.relative(req), err)
	}
	return res, nil
}

// relative is req's URL without the server's base, as the CLI names it.
func (c *adminClient) relative(req *http.Request) string {
	return strings.TrimPrefix(req.URL.String(), c.base)
}

// read reads the answer to a request sent by c. A status of 400 or more
// becomes a *serverError from the API's error shape; otherwise the body is
// decoded into out, if out is not nil and the body not empty. The raw body
// is returned too, for --json. err is the sending error, returned as is.
func (c *adminClient) read(res *http.Response, err error, out any) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	method, path := res.Request.Method, c.relative(res.Request)
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if res.StatusCode >= 400 {
		se := &serverError{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
		var eb apiclient.Error
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			se.Code, se.Message = eb.Error.Code, eb.Error.Message
			if id := deref(eb.Error.RequestID); id != "" {
				se.RequestID = id
			}
		} else {
			se.Code, se.Message = "http_error", http.StatusText(res.StatusCode)
		}
		return raw, se
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return raw, nil
}

// do sends a JSON request to a web sign-in endpoint that is not part of the
// admin API document, and decodes a JSON answer into out (if non-nil), as
// read does.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	return c.read(res, err, out)
}

// apiCall is one admin API operation of the generated client, with its
// arguments bound.
type apiCall func(ctx context.Context, api *apiclient.Client) (*http.Response, error)

// The generated client's operations, as method expressions, by their
// number of arguments after the context.
type (
	op0              = func(*apiclient.Client, context.Context, ...apiclient.RequestEditorFn) (*http.Response, error)
	op1[A any]       = func(*apiclient.Client, context.Context, A, ...apiclient.RequestEditorFn) (*http.Response, error)
	op2[A, B any]    = func(*apiclient.Client, context.Context, A, B, ...apiclient.RequestEditorFn) (*http.Response, error)
	op3[A, B, C any] = func(*apiclient.Client, context.Context, A, B, C, ...apiclient.RequestEditorFn) (*http.Response, error)
)

// bind0 to bind3 bind an operation of the generated client to its
// arguments, e.g. bind1((*apiclient.Client).GetUser, "alice").
func bind0(op op0) apiCall {
	return func(ctx context.Context, api *apiclient.Client) (*http.Response, error) { return op(api, ctx) }
}

func bind1[A any](op op1[A], a A) apiCall {
	return func(ctx context.Context, api *apiclient.Client) (*http.Response, error) { return op(api, ctx, a) }
}

func bind2[A, B any](op op2[A, B], a A, b B) apiCall {
	return func(ctx context.Context, api *apiclient.Client) (*http.Response, error) { return op(api, ctx, a, b) }
}

func bind3[A, B, C any](op op3[A, B, C], a A, b B, c C) apiCall {
	return func(ctx context.Context, api *apiclient.Client) (*http.Response, error) { return op(api, ctx, a, b, c) }
}

// byRef is op, an operation on the object named by one path parameter,
// waiting for that name.
func byRef(op op1[string]) func(ref string) apiCall {
	return func(ref string) apiCall { return bind1(op, ref) }
}

// fetch runs call and decodes its answer into a T, as read does.
func fetch[T any](ctx context.Context, c *adminClient, call apiCall) (*T, []byte, error) {
	var v T
	res, err := call(ctx, c.api)
	raw, err := c.read(res, err, &v)
	return &v, raw, err
}

// emit prints raw JSON (indented) with --json, or calls human otherwise.
func (o *adminOpts) emit(cmd *cobra.Command, raw []byte, human func(w io.Writer)) error {
	w := cmd.OutOrStdout()
	if o.json {
		var buf bytes.Buffer
		if len(raw) == 0 {
			raw = []byte("{}")
		}
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			_, err = w.Write(raw)
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	}
	human(w)
	return nil
}

func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = oneLine(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// oneLine keeps server-supplied strings from breaking the table or the terminal.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// stamp prints t as the server writes times (RFC 3339), or "" for nil.
func stamp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// ---- command helpers ----

// deref is *p, or the zero value for nil: the generated types make the
// API's optional fields pointers.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// optional is &s, or nil (field absent) for "".
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// changed is &v if the flag was given, or nil (field absent).
func changed[T any](cmd *cobra.Command, flag string, v T) *T {
	if !cmd.Flags().Changed(flag) {
		return nil
	}
	return &v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// adminCall runs call, decodes the answer into a T and prints it with human
// (or the server's JSON with --json).
func adminCall[T any](o *adminOpts, cmd *cobra.Command, call apiCall, human func(io.Writer, *T)) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	return adminCallWith(o, cmd, c, call, human)
}

// adminCallWith is adminCall with a client already built.
func adminCallWith[T any](o *adminOpts, cmd *cobra.Command, c *adminClient, call apiCall, human func(io.Writer, *T)) error {
	v, raw, err := fetch[T](cmd.Context(), c, call)
	if err != nil {
		return err
	}
	return o.emit(cmd, raw, func(w io.Writer) { human(w, v) })
}

// noContentCall runs call, whose answer is not decoded, and prints done (or
// the server's JSON with --json).
func (o *adminOpts) noContentCall(cmd *cobra.Command, call apiCall, done string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	res, err := call(cmd.Context(), c.api)
	raw, err := c.read(res, err, nil)
	if err != nil {
		return err
	}
	return o.emit(cmd, raw, func(w io.Writer) { fmt.Fprintln(w, oneLine(done)) })
}

// listCmd is a `list` command: it runs call() and prints a table with one
// row per item that items finds in the answer L.
func listCmd[L, T any](o *adminOpts, short string, call func() apiCall, items func(*L) []T,
	header []string, row func(*T) []string) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return adminCall(o, cmd, call(), func(w io.Writer, l *L) {
				list := items(l)
				rows := make([][]string, 0, len(list))
				for i := range list {
					rows = append(rows, row(&list[i]))
				}
				table(w, header, rows)
			})
		},
	}
}

// revisionNow is rev if known, else the revision the object that get reads
// has now.
func revisionNow[T any](ctx context.Context, c *adminClient, rev int64, known bool, get apiCall, revOf func(*T) int64) (int64, error) {
	if known {
		return rev, nil
	}
	cur, _, err := fetch[T](ctx, c, get)
	if err != nil {
		return 0, err
	}
	return revOf(cur), nil
}

// getCmd is a `get X` command showing the object that get(X) reads.
func getCmd[T any](o *adminOpts, use, short string, get func(ref string) apiCall, human func(io.Writer, *T)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, get(args[0]), human)
		},
	}
}

// deleteCmd is a `delete X` command running del(X) and printing done+X.
func deleteCmd(o *adminOpts, use, short string, del func(ref string) apiCall, done string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.noContentCall(cmd, del(args[0]), done+args[0])
		},
	}
}

// ---- users ----

func primaryEmail(u *apiclient.User) string {
	emails := deref(u.Emails)
	for _, e := range emails {
		if deref(e.Primary) {
			return e.Value
		}
	}
	if len(emails) > 0 {
		return emails[0].Value
	}
	return ""
}

func printUser(w io.Writer, u *apiclient.User) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", u.ID)
	kv("User name", u.UserName)
	kv("Kind", string(u.Kind))
	kv("Active", strconv.FormatBool(u.Active))
	kv("Display name", deref(u.DisplayName))
	if given, family := deref(u.GivenName), deref(u.FamilyName); given != "" || family != "" {
		kv("Name", strings.TrimSpace(given+" "+family))
	}
	if t := deref(u.Title); t != "" {
		kv("Title", t)
	}
	if x := deref(u.ExternalID); x != "" {
		kv("External ID", x)
	}
	for _, e := range deref(u.Emails) {
		v := e.Value
		if deref(e.Primary) {
			v += " (primary)"
		}
		kv("Email", v)
	}
	kv("Password", map[bool]string{true: "set", false: "none"}[deref(u.HasPassword)])
	attrs := deref(u.Attributes)
	for _, k := range sortedKeys(attrs) {
		kv("Attribute "+k, strings.Join(attrs[k], ", "))
	}
	kv("Revision", strconv.FormatInt(u.Revision, 10))
	kv("Created", fmtTime(&u.CreatedAt))
	kv("Updated", fmtTime(&u.UpdatedAt))
	_ = tw.Flush()
}

// parseAttrs turns repeated key=v1,v2 flags into attributes; a key given
// twice accumulates values.
func parseAttrs(in []string) (*apiclient.Attributes, error) {
	out := apiclient.Attributes{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--attr %q: want key=value[,value...]", a)
		}
		out[k] = append(out[k], strings.Split(v, ",")...)
	}
	return &out, nil
}

// parseEmails turns --email flags into e-mail addresses, the first primary.
func parseEmails(in []string) *apiclient.Emails {
	out := apiclient.Emails{}
	primary := true
	for i, e := range in {
		em := apiclient.Email{Value: e}
		if i == 0 {
			em.Primary = &primary
		}
		out = append(out, em)
	}
	return &out
}

func adminUsersCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users and service principals"}

	var filter, kind string
	list := listCmd(o, "List users and service principals",
		func() apiCall {
			p := &apiclient.ListUsersParams{Filter: optional(filter)}
			if kind != "" {
				k := apiclient.PrincipalKind(kind)
				p.Kind = &k
			}
			return bind1((*apiclient.Client).ListUsers, p)
		},
		func(l *apiclient.UserList) []apiclient.User { return l.Users },
		[]string{"ID", "USERNAME", "KIND", "ACTIVE", "DISPLAY NAME", "EMAIL"},
		func(u *apiclient.User) []string {
			return []string{u.ID, u.UserName, string(u.Kind), strconv.FormatBool(u.Active), deref(u.DisplayName), primaryEmail(u)}
		})
	list.Flags().StringVar(&filter, "filter", "", "only user names starting with this prefix")
	list.Flags().StringVar(&kind, "kind", "", "only this kind: user or service")

	get := getCmd(o, "get USER", "Show a user (by id or user name)", byRef((*apiclient.Client).GetUser), printUser)

	var (
		cf struct {
			displayName, givenName, familyName, title, externalID string
			emails, attrs                                         []string
			service, inactive, passwordStdin                      bool
		}
	)
	create := &cobra.Command{
		Use: "create USERNAME", Short: "Create a user (or, with --service, a service principal)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := apiclient.UserCreate{UserName: args[0], DisplayName: optional(cf.displayName),
				GivenName: optional(cf.givenName), FamilyName: optional(cf.familyName), Title: optional(cf.title),
				ExternalID: optional(cf.externalID)}
			if len(cf.emails) > 0 {
				body.Emails = parseEmails(cf.emails)
			}
			if len(cf.attrs) > 0 {
				attrs, err := parseAttrs(cf.attrs)
				if err != nil {
					return err
				}
				body.Attributes = attrs
			}
			if cf.service {
				k := apiclient.PrincipalKindService
				body.Kind = &k
			}
			if cf.inactive {
				active := false
				body.Active = &active
			}
			if cf.passwordStdin {
				pw, err := readPassword(cmd, "Password for "+args[0]+": ")
				if err != nil {
					return err
				}
				body.Password = &pw
			}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateUser, body), printUser)
		},
	}
	cfl := create.Flags()
	cfl.StringVar(&cf.displayName, "display-name", "", "display name")
	cfl.StringVar(&cf.givenName, "given-name", "", "given name")
	cfl.StringVar(&cf.familyName, "family-name", "", "family name")
	cfl.StringVar(&cf.title, "title", "", "title")
	cfl.StringVar(&cf.externalID, "external-id", "", "external (IdP) id")
	cfl.StringArrayVar(&cf.emails, "email", nil, "e-mail address (repeatable; the first is primary)")
	cfl.StringArrayVar(&cf.attrs, "attr", nil, "attribute key=value[,value...] (repeatable)")
	cfl.BoolVar(&cf.service, "service", false, "create a service principal (token auth only)")
	cfl.BoolVar(&cf.inactive, "inactive", false, "create disabled")
	cfl.BoolVar(&cf.passwordStdin, "password", false, "set a password, read from the terminal or the first line of stdin")

	var uf userUpdateFlags
	update := &cobra.Command{
		Use: "update USER", Short: "Change fields of a user (only the flags given)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := uf.patch(cmd)
			if err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if body.Revision, err = revisionNow(ctx, c, uf.revision, uf.revision != 0, bind1((*apiclient.Client).GetUser, args[0]),
				func(u *apiclient.User) int64 { return u.Revision }); err != nil {
				return err
			}
			return adminCallWith(o, cmd, c, bind2((*apiclient.Client).UpdateUser, args[0], *body), printUser)
		},
	}
	ufl := update.Flags()
	ufl.StringVar(&uf.userName, "user-name", "", "new user name")
	ufl.StringVar(&uf.displayName, "display-name", "", "display name")
	ufl.StringVar(&uf.givenName, "given-name", "", "given name")
	ufl.StringVar(&uf.familyName, "family-name", "", "family name")
	ufl.StringVar(&uf.title, "title", "", "title")
	ufl.StringVar(&uf.externalID, "external-id", "", "external (IdP) id")
	ufl.StringArrayVar(&uf.emails, "email", nil, "replace e-mail addresses (repeatable)")
	ufl.StringArrayVar(&uf.attrs, "attr", nil, "replace all attributes with key=value[,value...] (repeatable)")
	ufl.BoolVar(&uf.active, "active", true, "enable (true) or disable (false)")
	ufl.Int64Var(&uf.revision, "revision", 0, "expected revision (default: the current one)")

	del := deleteCmd(o, "delete USER", "Delete a user with its memberships and tokens", byRef((*apiclient.Client).DeleteUser), "deleted ")
	disable := getCmd(o, "disable USER", "Disable a user; its tokens and sessions stop working at once",
		byRef((*apiclient.Client).DisableUser), printUser)
	enable := getCmd(o, "enable USER", "Enable a user", byRef((*apiclient.Client).EnableUser), printUser)
	setAttr := &cobra.Command{
		Use: "set-attr USER KEY VALUE...", Short: "Set the values of one attribute", Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind3((*apiclient.Client).SetUserAttribute, args[0], args[1], apiclient.AttributeValues{Values: args[2:]}), printAttrs)
		},
	}
	unsetAttr := &cobra.Command{
		Use: "unset-attr USER KEY", Short: "Remove one attribute", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind2((*apiclient.Client).DeleteUserAttribute, args[0], args[1]), printAttrs)
		},
	}
	setPassword := &cobra.Command{
		Use:   "set-password USER",
		Short: "Set a local user's password (read from the terminal or the first line of stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, "New password for "+args[0]+": ")
			if err != nil {
				return err
			}
			return o.noContentCall(cmd, bind2((*apiclient.Client).SetUserPassword, args[0], apiclient.PasswordSet{Password: &pw}), "password set for "+args[0]+"; existing sessions were revoked")
		},
	}
	cmd.AddCommand(list, get, create, update, del, disable, enable, setAttr, unsetAttr, setPassword)
	return cmd
}

// userUpdateFlags are the flags of `users update`.
type userUpdateFlags struct {
	displayName, givenName, familyName, title, externalID, userName string
	emails, attrs                                                   []string
	active                                                          bool
	revision                                                        int64
}

// patch is the body of `users update`: the fields whose flags were given
// (its Revision is left to the caller).
func (uf *userUpdateFlags) patch(cmd *cobra.Command) (*apiclient.UserPatch, error) {
	body := &apiclient.UserPatch{UserName: changed(cmd, "user-name", uf.userName),
		DisplayName: changed(cmd, "display-name", uf.displayName), GivenName: changed(cmd, "given-name", uf.givenName),
		FamilyName: changed(cmd, "family-name", uf.familyName), Title: changed(cmd, "title", uf.title),
		ExternalID: changed(cmd, "external-id", uf.externalID), Active: changed(cmd, "active", uf.active)}
	if cmd.Flags().Changed("email") {
		body.Emails = parseEmails(uf.emails)
	}
	if cmd.Flags().Changed("attr") {
		a, err := parseAttrs(uf.attrs)
		if err != nil {
			return nil, err
		}
		body.Attributes = a
	}
	if *body == (apiclient.UserPatch{}) {
		return nil, errors.New("nothing to change: give at least one field flag")
	}
	return body, nil
}

func printAttrs(w io.Writer, a *apiclient.AttributesDoc) {
	keys := sortedKeys(a.Attributes)
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k, strings.Join(a.Attributes[k], ", ")})
	}
	table(w, []string{"KEY", "VALUES"}, rows)
}

// readPassword reads a password without echo from a terminal (asking
// twice), or the first line of a non-terminal stdin.
func readPassword(cmd *cobra.Command, prompt string) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		errw := cmd.ErrOrStderr()
		fmt.Fprint(errw, prompt)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(errw)
		if err != nil {
			return "", err
		}
		fmt.Fprint(errw, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(errw)
		if err != nil {
			return "", err
		}
		if !bytes.Equal(a, b) {
			return "", errors.New("the passwords do not match")
		}
		return string(a), nil
	}
	return readPasswordLine(in)
}

// readPasswordLine reads a password from the first line of a non-terminal
// stdin.
func readPasswordLine(in io.Reader) (string, error) {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("empty password on stdin")
	}
	return pw, nil
}

// ---- groups ----

func printGroup(w io.Writer, g *apiclient.Group) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", g.ID)
	kv("Display name", g.DisplayName)
	if x := deref(g.ExternalID); x != "" {
		kv("External ID", x)
	}
	kv("Revision", strconv.FormatInt(g.Revision, 10))
	kv("Members", strconv.Itoa(len(g.Members)))
	_ = tw.Flush()
	if len(g.Members) > 0 {
		rows := make([][]string, 0, len(g.Members))
		for _, m := range g.Members {
			rows = append(rows, []string{string(m.Type), m.Value})
		}
		table(w, []string{"TYPE", "MEMBER ID"}, rows)
	}
}

func adminGroupsCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Manage groups"}

	var filter string
	list := listCmd(o, "List groups",
		func() apiCall {
			p := &apiclient.ListGroupsParams{Filter: optional(filter)}
			return bind1((*apiclient.Client).ListGroups, p)
		},
		func(l *apiclient.GroupList) []apiclient.Group { return l.Groups },
		[]string{"ID", "DISPLAY NAME", "MEMBERS"},
		func(g *apiclient.Group) []string { return []string{g.ID, g.DisplayName, strconv.Itoa(len(g.Members))} })
	list.Flags().StringVar(&filter, "filter", "", "only display names starting with this prefix")

	get := getCmd(o, "get GROUP", "Show a group (by id or display name)", byRef((*apiclient.Client).GetGroup), printGroup)
	var members []string
	var externalID string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := apiclient.GroupCreate{DisplayName: args[0], ExternalID: optional(externalID)}
			if len(members) > 0 {
				refs := make(apiclient.MemberRefs, 0, len(members))
				for _, m := range members {
					refs = append(refs, apiclient.MemberRef{Value: m})
				}
				body.Members = &refs
			}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateGroup, body), printGroup)
		},
	}
	create.Flags().StringArrayVar(&members, "member", nil, "member user or group, by id or name (repeatable)")
	create.Flags().StringVar(&externalID, "external-id", "", "external (IdP) id")

	del := deleteCmd(o, "delete GROUP", "Delete a group", byRef((*apiclient.Client).DeleteGroup), "deleted group ")
	var memberType string
	add := &cobra.Command{
		Use: "add-member GROUP MEMBER", Short: "Add a user or group (by id or name) to a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := apiclient.MemberRef{Value: args[1]}
			if memberType != "" {
				t, ok := map[string]apiclient.MemberType{"user": apiclient.MemberTypeUser, "group": apiclient.MemberTypeGroup}[strings.ToLower(memberType)]
				if !ok {
					return fmt.Errorf("--type %q: want user or group", memberType)
				}
				body.Type = &t
			}
			return adminCall(o, cmd, bind2((*apiclient.Client).AddGroupMember, args[0], body), printGroup)
		},
	}
	add.Flags().StringVar(&memberType, "type", "", "member type when the name is ambiguous: user or group")
	remove := &cobra.Command{
		Use: "remove-member GROUP MEMBER", Short: "Remove a direct member from a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind2((*apiclient.Client).RemoveGroupMember, args[0], args[1]), printGroup)
		},
	}
	cmd.AddCommand(list, get, create, del, add, remove)
	return cmd
}

// ---- tokens ----

func tokenState(t *apiclient.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "active"
}

func adminTokensCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Manage bearer tokens"}

	var principal string
	var now time.Time // for STATE: taken when the answer has come, at the first row
	list := listCmd(o, "List your tokens, or (admin) another principal's",
		func() apiCall {
			now = time.Time{}
			p := &apiclient.ListTokensParams{PrincipalID: optional(principal)}
			return bind1((*apiclient.Client).ListTokens, p)
		},
		func(l *apiclient.TokenList) []apiclient.Token { return l.Tokens },
		[]string{"ID", "KIND", "NAME", "STATE", "CREATED", "EXPIRES", "LAST USED"},
		func(t *apiclient.Token) []string {
			if now.IsZero() {
				now = time.Now()
			}
			return []string{t.ID, string(t.Kind), t.Name, tokenState(t, now), fmtTime(&t.CreatedAt), fmtTime(&t.ExpiresAt), fmtTime(t.LastUsedAt)}
		})
	list.Flags().StringVar(&principal, "principal", "", "principal id or user name (admin)")

	var name, forPrincipal string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a personal access token; prints the secret once",
		Long: `Create a personal access token. The secret is printed alone on stdout (so that
TOKEN=$(gatehouse admin tokens create --name ci) works) and is never shown again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := apiclient.TokenCreate{Name: optional(name), PrincipalID: optional(forPrincipal)}
			if ttl != 0 {
				if ttl < time.Minute || ttl%time.Second != 0 {
					return fmt.Errorf("--ttl %s: want whole seconds, at least 1m", ttl)
				}
				secs := int64(ttl / time.Second)
				body.TTLSeconds = &secs
			}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateToken, body), func(w io.Writer, t *apiclient.TokenCreated) {
				fmt.Fprintf(cmd.ErrOrStderr(), "created token %s (expires %s); the secret below is shown only once\n",
					t.ID, fmtTime(&t.ExpiresAt))
				fmt.Fprintln(w, t.Token)
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name to recognise the token by")
	create.Flags().StringVar(&forPrincipal, "principal", "", "create for this principal id or user name (admin)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, e.g. 720h (default: the longest allowed, at most identity.token_max_ttl, 90 days unless configured, and no later than the session or token you mint it with; longer is refused)")

	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind1((*apiclient.Client).RevokeToken, args[0]), func(w io.Writer, t *apiclient.Token) {
				fmt.Fprintf(w, "revoked token %s\n", oneLine(t.ID))
			})
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}

// ---- roles ----

func printRole(w io.Writer, r *apiclient.Role) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", r.ID)
	kv("Name", r.Name)
	kv("ARN", r.ARN)
	kv("Path", r.Path)
	if d := deref(r.Description); d != "" {
		kv("Description", d)
	}
	kv("Max session", (time.Duration(r.MaxSessionDuration) * time.Second).String())
	for _, k := range sortedKeys(r.Tags) {
		kv("Tag "+k, r.Tags[k])
	}
	names := make([]string, 0, len(r.Policies))
	for _, p := range r.Policies {
		names = append(names, p.Name)
	}
	kv("Policies", strings.Join(names, ", "))
	kv("Boundary", map[bool]string{true: "set", false: "none"}[len(deref(r.PermissionsBoundary)) > 0])
	kv("Revision", strconv.FormatInt(r.Revision, 10))
	kv("Created", fmtTime(&r.CreatedAt))
	kv("Updated", fmtTime(&r.UpdatedAt))
	_ = tw.Flush()
	printDocument(w, "Trust policy", r.TrustPolicy)
}

// printDocument prints a labelled, indented JSON policy document (nothing if
// it is not JSON).
func printDocument(w io.Writer, label string, doc json.RawMessage) {
	var buf bytes.Buffer
	if json.Indent(&buf, doc, "  ", "  ") == nil {
		fmt.Fprintf(w, "%s:\n  %s\n", label, buf.String())
	}
}

// readJSONFile reads a JSON document from path ("-" is stdin) for flag, and
// checks locally that it is JSON; the server validates the policy itself.
func readJSONFile(cmd *cobra.Command, flag, path string) (json.RawMessage, error) {
	b, err := readFileOrStdin(cmd, flag, path, 4<<20)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s %s: not valid JSON", flag, path)
	}
	return json.RawMessage(b), nil
}

// readFileOrStdin reads the file at path for flag, or for "-" at most limit
// bytes of stdin.
func readFileOrStdin(cmd *cobra.Command, flag, path string, limit int64) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), limit))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return b, nil
}

// parseTags turns repeated key=value flags into role tags.
func parseTags(in []string) (apiclient.RoleTags, error) {
	out := apiclient.RoleTags{}
	for _, t := range in {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--tag %q: want key=value", t)
		}
		out[k] = v
	}
	return out, nil
}

func durationSeconds(flag string, d time.Duration) (int64, error) {
	if d <= 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("%s %s: want a positive whole number of seconds, e.g. 1h or 3600s", flag, d)
	}
	return int64(d / time.Second), nil
}

func adminRolesCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "roles", Short: "Manage IAM roles (trust policy, permission policies, max session)"}

	var filter, pathPrefix string
	list := listCmd(o, "List roles",
		func() apiCall {
			p := &apiclient.ListRolesParams{Filter: optional(filter), PathPrefix: optional(pathPrefix)}
			return bind1((*apiclient.Client).ListRoles, p)
		},
		func(l *apiclient.RoleList) []apiclient.Role { return l.Roles },
		[]string{"ID", "NAME", "ARN", "MAX SESSION", "POLICIES"},
		func(r *apiclient.Role) []string {
			return []string{r.ID, r.Name, r.ARN, (time.Duration(r.MaxSessionDuration) * time.Second).String(),
				strconv.Itoa(len(r.Policies))}
		})
	list.Flags().StringVar(&filter, "filter", "", "only role names starting with this prefix")
	list.Flags().StringVar(&pathPrefix, "path-prefix", "", "only roles whose path starts with this prefix")

	get := getCmd(o, "get ROLE", "Show a role (by id or name)", byRef((*apiclient.Client).GetRole), printRole)

	var cf struct {
		name, path, description, trustPolicy, boundary string
		policies, tags                                 []string
		maxSession                                     time.Duration
	}
	create := &cobra.Command{
		Use:   "create --name NAME --trust-policy FILE",
		Short: "Create a role",
		Long: `Create a role. Policy files hold IAM JSON policy documents ("-" reads stdin).
The server validates them and names the JSON path of any problem.

  gatehouse admin roles create --name data-reader --trust-policy trust.json \
      --policy read=read.json --max-session-duration 4h --tag team=data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cf.name == "" || cf.trustPolicy == "" {
				return errors.New("--name and --trust-policy are required")
			}
			trust, err := readJSONFile(cmd, "--trust-policy", cf.trustPolicy)
			if err != nil {
				return err
			}
			body := apiclient.RoleCreate{Name: cf.name, TrustPolicy: trust, Path: optional(cf.path),
				Description: optional(cf.description)}
			if body.Policies, err = namedPolicies(cmd, cf.policies); err != nil {
				return err
			}
			if cf.boundary != "" {
				doc, err := readJSONFile(cmd, "--permissions-boundary", cf.boundary)
				if err != nil {
					return err
				}
				body.PermissionsBoundary = &doc
			}
			if cmd.Flags().Changed("max-session-duration") {
				secs, err := durationSeconds("--max-session-duration", cf.maxSession)
				if err != nil {
					return err
				}
				n := int(secs)
				body.MaxSessionDuration = &n
			}
			if len(cf.tags) > 0 {
				tags, err := parseTags(cf.tags)
				if err != nil {
					return err
				}
				body.Tags = &tags
			}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateRole, body), printRole)
		},
	}
	cfl := create.Flags()
	cfl.StringVar(&cf.name, "name", "", "role name (letters, digits and +=,.@_-; at most 64)")
	cfl.StringVar(&cf.trustPolicy, "trust-policy", "", "file with the trust policy (who may assume the role)")
	cfl.StringArrayVar(&cf.policies, "policy", nil, "inline permission policy name=FILE (repeatable)")
	cfl.StringVar(&cf.boundary, "permissions-boundary", "", "file with a permissions boundary policy")
	cfl.DurationVar(&cf.maxSession, "max-session-duration", time.Hour, "longest session the role grants, 15m to 12h")
	cfl.StringArrayVar(&cf.tags, "tag", nil, "tag key=value (repeatable)")
	cfl.StringVar(&cf.path, "path", "", `role path, e.g. /eng/ (default "/")`)
	cfl.StringVar(&cf.description, "description", "", "description")

	del := deleteCmd(o, "delete ROLE", "Delete a role with its inline policies", byRef((*apiclient.Client).DeleteRole), "deleted role ")
	var revision int64
	putPolicy := &cobra.Command{
		Use: "put-policy ROLE POLICY-NAME FILE", Short: "Add or replace an inline permission policy", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readJSONFile(cmd, "policy file", args[2])
			if err != nil {
				return err
			}
			body := apiclient.PolicyPut{Document: doc, Revision: changed(cmd, "revision", revision)}
			return adminCall(o, cmd, bind3((*apiclient.Client).PutRolePolicy, args[0], args[1], body), printRole)
		},
	}
	putPolicy.Flags().Int64Var(&revision, "revision", 0, "expected revision (default: apply to the current one)")
	delPolicy := &cobra.Command{
		Use: "delete-policy ROLE POLICY-NAME", Short: "Remove an inline permission policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind2((*apiclient.Client).DeleteRolePolicy, args[0], args[1]), printRole)
		},
	}
	var trustRevision int64
	setTrust := &cobra.Command{
		Use: "set-trust-policy ROLE FILE", Short: "Replace a role's trust policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readJSONFile(cmd, "trust policy file", args[1])
			if err != nil {
				return err
			}
			body := apiclient.PolicyPut{Document: doc, Revision: changed(cmd, "revision", trustRevision)}
			return adminCall(o, cmd, bind2((*apiclient.Client).PutRoleTrustPolicy, args[0], body), printRole)
		},
	}
	setTrust.Flags().Int64Var(&trustRevision, "revision", 0, "expected revision (default: apply to the current one)")
	cmd.AddCommand(list, get, create, del, putPolicy, delPolicy, setTrust)
	return cmd
}

// namedPolicies reads --policy name=FILE flags into inline policies (nil for
// none).
func namedPolicies(cmd *cobra.Command, flags []string) (*[]apiclient.NamedPolicyIn, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	pols := make([]apiclient.NamedPolicyIn, 0, len(flags))
	for _, p := range flags {
		name, file, ok := strings.Cut(p, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("--policy %q: want name=FILE", p)
		}
		doc, err := readJSONFile(cmd, "--policy "+name, file)
		if err != nil {
			return nil, err
		}
		pols = append(pols, apiclient.NamedPolicyIn{Name: name, Document: doc})
	}
	return &pols, nil
}

// ---- identity providers ----

func adminProvidersCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "providers", Short: "Manage the SAML and OIDC identity providers roles can trust"}
	cmd.AddCommand(adminSAMLCmd(o), adminOIDCCmd(o))
	return cmd
}

func adminSAMLCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "saml", Short: "Manage SAML 2.0 identity providers"}
	list := listCmd(o, "List SAML providers",
		func() apiCall {
			return bind0((*apiclient.Client).ListSAMLProviders)
		},
		func(l *apiclient.SAMLProviderList) []apiclient.SAMLProvider { return l.SAMLProviders },
		[]string{"ID", "NAME", "ENTITY ID", "ARN"},
		func(p *apiclient.SAMLProvider) []string { return []string{p.ID, p.Name, p.EntityID, p.ARN} })
	var name, metadata string
	create := &cobra.Command{
		Use: "create --name NAME --metadata FILE", Short: "Register a SAML IdP from its metadata XML (\"-\" reads stdin)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || metadata == "" {
				return errors.New("--name and --metadata are required")
			}
			b, err := readFileOrStdin(cmd, "--metadata", metadata, 2<<20)
			if err != nil {
				return err
			}
			body := apiclient.SAMLProviderCreate{Name: name, MetadataXML: string(b)}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateSAMLProvider, body), func(w io.Writer, p *apiclient.SAMLProvider) {
				fmt.Fprintf(w, "created SAML provider %s (entity id %s)\n%s\n", oneLine(p.Name), oneLine(p.EntityID), oneLine(p.ARN))
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "provider name (letters, digits and ._-)")
	create.Flags().StringVar(&metadata, "metadata", "", "file with the IdP's SAML metadata XML")
	del := deleteCmd(o, "delete PROVIDER", "Delete a SAML provider (by id or name)", byRef((*apiclient.Client).DeleteSAMLProvider), "deleted SAML provider ")
	cmd.AddCommand(list, create, del)
	return cmd
}

func adminOIDCCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "oidc", Short: "Manage OpenID Connect identity providers"}
	list := listCmd(o, "List OIDC providers",
		func() apiCall { return bind0((*apiclient.Client).ListOIDCProviders) },
		func(l *apiclient.OIDCProviderList) []apiclient.OIDCProvider { return l.OIDCProviders },
		[]string{"ID", "ISSUER", "AUDIENCES", "ARN"},
		func(p *apiclient.OIDCProvider) []string {
			return []string{p.ID, p.IssuerURL, strings.Join(p.Audiences, ","), p.ARN}
		})
	var cf struct {
		issuer, jwksURL, groupsClaim, rolesClaim, usernameClaim string
		audiences, thumbprints                                  []string
	}
	create := &cobra.Command{
		Use:   "create --issuer URL --audience CLIENT-ID...",
		Short: "Register an OIDC issuer (https; http only for loopback hosts)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cf.issuer == "" || len(cf.audiences) == 0 {
				return errors.New("--issuer and at least one --audience are required")
			}
			body := apiclient.OIDCProviderCreate{IssuerURL: cf.issuer, Audiences: cf.audiences, JWKSURL: optional(cf.jwksURL),
				GroupsClaim: optional(cf.groupsClaim), RolesClaim: optional(cf.rolesClaim), UsernameClaim: optional(cf.usernameClaim)}
			if len(cf.thumbprints) > 0 {
				body.Thumbprints = &cf.thumbprints
			}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateOIDCProvider, body), func(w io.Writer, p *apiclient.OIDCProvider) {
				fmt.Fprintf(w, "created OIDC provider %s (id %s)\n%s\n", oneLine(p.IssuerURL), oneLine(p.ID), oneLine(p.ARN))
			})
		},
	}
	fl := create.Flags()
	fl.StringVar(&cf.issuer, "issuer", "", "issuer URL, exactly as in the tokens' iss claim")
	fl.StringArrayVar(&cf.audiences, "audience", nil, "accepted audience / client id (repeatable)")
	fl.StringArrayVar(&cf.thumbprints, "thumbprint", nil, "certificate thumbprint, 40 or 64 hex digits (repeatable)")
	fl.StringVar(&cf.jwksURL, "jwks-url", "", "JWKS URL (default: OIDC discovery)")
	fl.StringVar(&cf.groupsClaim, "groups-claim", "", "claim carrying group names")
	fl.StringVar(&cf.rolesClaim, "roles-claim", "", "claim carrying role names or ARNs")
	fl.StringVar(&cf.usernameClaim, "username-claim", "", "claim carrying the user name")
	del := &cobra.Command{
		Use: "delete PROVIDER", Short: "Delete an OIDC provider (by id or issuer URL)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if strings.Contains(ref, "://") {
				id, err := oidcProviderByIssuer(cmd, o, ref)
				if err != nil {
					return err
				}
				ref = id
			}
			return o.noContentCall(cmd, bind1((*apiclient.Client).DeleteOIDCProvider, ref), "deleted OIDC provider "+args[0])
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

// oidcProviderByIssuer returns the id of the OIDC provider whose issuer URL
// is issuer (trailing slashes aside).
func oidcProviderByIssuer(cmd *cobra.Command, o *adminOpts, issuer string) (string, error) {
	c, err := o.client()
	if err != nil {
		return "", err
	}
	l, _, err := fetch[apiclient.OIDCProviderList](cmd.Context(), c, bind0((*apiclient.Client).ListOIDCProviders))
	if err != nil {
		return "", err
	}
	id := ""
	for _, p := range l.OIDCProviders {
		if p.IssuerURL == issuer || strings.TrimRight(p.IssuerURL, "/") == strings.TrimRight(issuer, "/") {
			id = p.ID
		}
	}
	if id == "" {
		return "", fmt.Errorf("no OIDC provider with issuer %q", issuer)
	}
	return id, nil
}

// ---- managed policies ----

func printManagedPolicy(w io.Writer, p *apiclient.ManagedPolicy) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", p.ID)
	kv("Name", p.Name)
	kv("ARN", p.ARN)
	kv("Path", p.Path)
	if d := deref(p.Description); d != "" {
		kv("Description", d)
	}
	kv("Revision", strconv.FormatInt(p.Revision, 10))
	kv("Created", fmtTime(&p.CreatedAt))
	kv("Updated", fmtTime(&p.UpdatedAt))
	_ = tw.Flush()
	printDocument(w, "Document", p.Document)
}

func adminPoliciesCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "policies", Short: "Manage customer-managed IAM policies (STS PolicyArns session policies)"}

	var filter, pathPrefix string
	list := listCmd(o, "List managed policies",
		func() apiCall {
			p := &apiclient.ListManagedPoliciesParams{Filter: optional(filter), PathPrefix: optional(pathPrefix)}
			return bind1((*apiclient.Client).ListManagedPolicies, p)
		},
		func(l *apiclient.ManagedPolicyList) []apiclient.ManagedPolicy { return l.Policies },
		[]string{"ID", "NAME", "ARN", "REVISION"},
		func(p *apiclient.ManagedPolicy) []string {
			return []string{p.ID, p.Name, p.ARN, strconv.FormatInt(p.Revision, 10)}
		})
	list.Flags().StringVar(&filter, "filter", "", "only policy names starting with this prefix")
	list.Flags().StringVar(&pathPrefix, "path-prefix", "", "only policies whose path starts with this prefix")

	get := getCmd(o, "get POLICY", "Show a managed policy (by id or name)", byRef((*apiclient.Client).GetManagedPolicy), printManagedPolicy)

	var cf struct{ name, path, description, document string }
	create := &cobra.Command{
		Use:   "create --name NAME --document FILE",
		Short: "Create a managed policy",
		Long: `Create a customer-managed policy from an IAM JSON policy document ("-" reads
stdin). Its ARN, arn:aws:iam::<account>:policy<path><name>, can then be passed
to STS as a session policy:

  gatehouse admin policies create --name lake-read --document read.json
  aws sts assume-role-with-web-identity ... --policy-arns arn=arn:aws:iam::000000000000:policy/lake-read`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cf.name == "" || cf.document == "" {
				return errors.New("--name and --document are required")
			}
			doc, err := readJSONFile(cmd, "--document", cf.document)
			if err != nil {
				return err
			}
			body := apiclient.ManagedPolicyCreate{Name: cf.name, Document: doc, Path: optional(cf.path),
				Description: optional(cf.description)}
			return adminCall(o, cmd, bind1((*apiclient.Client).CreateManagedPolicy, body), printManagedPolicy)
		},
	}
	cfl := create.Flags()
	cfl.StringVar(&cf.name, "name", "", "policy name (letters, digits and +=,.@_-; at most 128)")
	cfl.StringVar(&cf.document, "document", "", "file with the IAM policy document")
	cfl.StringVar(&cf.path, "path", "", `policy path, e.g. /eng/ (default "/")`)
	cfl.StringVar(&cf.description, "description", "", "description")

	var uf struct {
		document, description string
		revision              int64
	}
	update := &cobra.Command{
		Use:   "update POLICY --document FILE",
		Short: "Replace a managed policy's document",
		Long: `Replace a managed policy's document. Without --revision the current revision
is read first; with it, the update fails (409) if the policy changed since.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if uf.document == "" {
				return errors.New("--document is required")
			}
			doc, err := readJSONFile(cmd, "--document", uf.document)
			if err != nil {
				return err
			}
			body := apiclient.ManagedPolicyPut{Document: doc, Description: changed(cmd, "description", uf.description)}
			c, err := o.client()
			if err != nil {
				return err
			}
			if body.Revision, err = revisionNow(cmd.Context(), c, uf.revision, cmd.Flags().Changed("revision"),
				bind1((*apiclient.Client).GetManagedPolicy, args[0]), func(p *apiclient.ManagedPolicy) int64 { return p.Revision }); err != nil {
				return err
			}
			return adminCallWith(o, cmd, c, bind2((*apiclient.Client).UpdateManagedPolicy, args[0], body), printManagedPolicy)
		},
	}
	update.Flags().StringVar(&uf.document, "document", "", "file with the new IAM policy document")
	update.Flags().StringVar(&uf.description, "description", "", "new description")
	update.Flags().Int64Var(&uf.revision, "revision", 0, "expected revision (default: the current one)")

	del := deleteCmd(o, "delete POLICY", "Delete a managed policy (sessions naming it are then denied)", byRef((*apiclient.Client).DeleteManagedPolicy), "deleted policy ")
	cmd.AddCommand(list, get, create, update, del)
	return cmd
}

// ---- STS sessions ----

func adminSessionsCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Revoke STS temporary credentials"}
	var session, user string
	revoke := &cobra.Command{
		Use:   "revoke --session ID | --user NAME",
		Short: "Revoke one STS session, or every session of a user",
		Long: `Revoke STS temporary credentials; they fail on every replica within 5 seconds.

--session takes the sessionId recorded in the session's GH4000I audit event
(find it with 'gatehouse audit search'); sessions chained from it are revoked
too. --user takes a user name or id and revokes every credential of that user
issued until now.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (session == "") == (user == "") {
				return errors.New("give exactly one of --session or --user")
			}
			body := apiclient.RevocationRequest{SessionID: optional(session), UserName: optional(user)}
			return adminCall(o, cmd, bind1((*apiclient.Client).RevokeCredentials, body), func(w io.Writer, out *apiclient.Revocation) {
				if id := deref(out.SessionID); id != "" {
					fmt.Fprintf(w, "revoked session %s (denied until %s)\n", oneLine(id), stamp(out.DeniedUntil))
					return
				}
				fmt.Fprintf(w, "revoked every session of %s (%s) issued before %s\n", oneLine(deref(out.UserName)),
					oneLine(deref(out.UserID)), stamp(out.NotBefore))
			})
		},
	}
	revoke.Flags().StringVar(&session, "session", "", "session id (from the GH4000I audit event)")
	revoke.Flags().StringVar(&user, "user", "", "user name or id")
	cmd.AddCommand(revoke)
	return cmd
}

// adminDecodeAuthzCmd decodes an encoded authorization failure message.
func adminDecodeAuthzCmd(o *adminOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "decode-authorization-message MESSAGE",
		Short: "Explain a denial from its encoded authorization failure message (ghm1....)",
		Long: `An S3 AccessDenied caused by policy ends with "Encoded authorization failure
message: ghm1....". The user cannot read it; this decodes it (admins only, audited)
into the principal, action, resource, mount and the policy evaluator's reason.
Give "-" to read the message from stdin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg := args[0]
			if msg == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				if err != nil {
					return err
				}
				msg = string(b)
			}
			if i := strings.Index(msg, "ghm1."); i >= 0 { // accept the whole error text too
				msg = strings.Fields(msg[i:])[0]
			}
			body := apiclient.DecodeAuthorizationMessageJSONRequestBody{Message: strings.TrimSpace(msg)}
			return adminCall(o, cmd, bind1((*apiclient.Client).DecodeAuthorizationMessage, body), printExplanation)
		},
	}
}

func printExplanation(w io.Writer, out *apiclient.AuthorizationExplanation) {
	fmt.Fprintf(w, "denied:     %s on %s\n", oneLine(deref(out.Action)), oneLine(deref(out.Resource)))
	fmt.Fprintf(w, "principal:  %s (end user %s)\n", oneLine(deref(out.Principal)), oneLine(deref(out.SourceIdentity)))
	if m := deref(out.Mount); m != "" {
		fmt.Fprintf(w, "mount:      %s\n", oneLine(m))
	}
	fmt.Fprintf(w, "reason:     %s\n", oneLine(deref(out.Reason)))
	fmt.Fprintf(w, "request:    %s at %s\n", oneLine(deref(out.RequestID)), stamp(out.Time))
}

// ---- S3 gateway mounts ----

func printMount(w io.Writer, m *apiclient.Mount) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", m.ID)
	kv("Mount", "s3://"+m.Bucket+"/"+m.Prefix)
	kv("Role", m.RoleARN)
	if d := deref(m.Description); d != "" {
		kv("Description", d)
	}
	kv("Revision", strconv.FormatInt(m.Revision, 10))
	kv("Created", fmtTime(&m.CreatedAt))
	_ = tw.Flush()
}

func adminMountsCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "mounts", Short: "Manage S3 gateway mounts (bucket prefixes bound to roles)"}

	var bucketFilter string
	list := listCmd(o, "List mounts",
		func() apiCall {
			p := &apiclient.ListMountsParams{Bucket: optional(bucketFilter)}
			return bind1((*apiclient.Client).ListMounts, p)
		},
		func(l *apiclient.MountList) []apiclient.Mount { return l.Mounts },
		[]string{"ID", "BUCKET", "PREFIX", "ROLE"},
		func(m *apiclient.Mount) []string { return []string{m.ID, m.Bucket, m.Prefix, m.RoleARN} })
	list.Flags().StringVar(&bucketFilter, "bucket", "", "only mounts of this bucket")

	get := getCmd(o, "get ID", "Show a mount", byRef((*apiclient.Client).GetMount), printMount)

	var cf struct{ bucket, prefix, role, description string }
	create := &cobra.Command{
		Use:   "create --bucket BUCKET --prefix PREFIX --role ROLE",
		Short: "Bind a bucket prefix to a role",
		Long: `Bind a bucket prefix to a role. S3 requests under the prefix are then authorized
as that role for callers entitled to it (others get AccessDenied), without the
caller switching credentials. ROLE is a role name or ARN; the prefix ends in "/".

  gatehouse admin mounts create --bucket demo --prefix sales/ --role analyst`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			arn := cf.role
			if !strings.HasPrefix(arn, "arn:") {
				r, _, err := fetch[apiclient.Role](cmd.Context(), c, bind1((*apiclient.Client).GetRole, cf.role))
				if err != nil {
					return err
				}
				arn = r.ARN
			}
			body := apiclient.MountCreate{Bucket: cf.bucket, Prefix: cf.prefix, RoleARN: arn, Description: optional(cf.description)}
			return adminCallWith(o, cmd, c, bind1((*apiclient.Client).CreateMount, body), printMount)
		},
	}
	cfl := create.Flags()
	cfl.StringVar(&cf.bucket, "bucket", "", "bucket name (required)")
	cfl.StringVar(&cf.prefix, "prefix", "", `key prefix ending in "/" (required)`)
	cfl.StringVar(&cf.role, "role", "", "role name or ARN (required)")
	cfl.StringVar(&cf.description, "description", "", "description")
	for _, f := range []string{"bucket", "prefix", "role"} {
		_ = create.MarkFlagRequired(f)
	}

	del := deleteCmd(o, "delete ID", "Remove a mount", byRef((*apiclient.Client).DeleteMount), "deleted mount ")
	cmd.AddCommand(list, get, create, del)
	return cmd
}

// ---- privileges ----

func printGrant(w io.Writer, g *apiclient.PrivilegeGrant) {
	fmt.Fprintf(w, "%s holds %s (principal %s)\n", oneLine(g.UserName), oneLine(string(g.Privilege)), oneLine(g.PrincipalID))
}

// adminPrivilegesCmd is `gatehouse admin privileges`: who is an
// administrator (admin) and who may call SCIM (scim). These are held by
// principals, outside the directory (docs/design/0015-admin-privilege.md).
func adminPrivilegesCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "privileges", Short: "Grant and revoke the admin and scim privileges"}
	list := listCmd(o, "List privilege grants",
		func() apiCall {
			return bind0((*apiclient.Client).ListPrivileges)
		},
		func(l *apiclient.PrivilegeList) []apiclient.PrivilegeGrant { return l.Grants },
		[]string{"PRIVILEGE", "USER NAME", "PRINCIPAL ID", "GRANTED AT", "GRANTED BY"},
		func(g *apiclient.PrivilegeGrant) []string {
			return []string{string(g.Privilege), g.UserName, g.PrincipalID, stamp(&g.GrantedAt), g.GrantedBy}
		})
	grant := &cobra.Command{
		Use: "grant PRINCIPAL admin|scim", Short: "Grant a privilege (granting admin with the bootstrap token retires it)",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, bind2((*apiclient.Client).GrantPrivilege, args[1], args[0]), printGrant)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke PRINCIPAL admin|scim", Short: "Revoke a privilege (the last admin cannot be revoked)",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.noContentCall(cmd, bind2((*apiclient.Client).RevokePrivilege, args[1], args[0]), args[1]+" revoked from "+args[0])
		},
	}
	cmd.AddCommand(list, grant, revoke)
	return cmd
}
