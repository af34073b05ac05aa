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
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
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

type adminClient struct {
	base  string
	token string
	hc    *http.Client
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
	return &adminClient{base: base, token: tok, hc: &http.Client{Timeout: 60 * time.Second}}, nil
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

// do sends a JSON request and decodes a JSON answer into out (if non-nil).
// It returns the raw body too, for --json.
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
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", "gatehouse-cli/"+version)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if res.StatusCode >= 400 {
		se := &serverError{Status: res.StatusCode, RequestID: res.Header.Get("X-Request-Id")}
		var eb struct {
			Error struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			se.Code, se.Message = eb.Error.Code, eb.Error.Message
			if eb.Error.RequestID != "" {
				se.RequestID = eb.Error.RequestID
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

func pathEsc(s string) string { return url.PathEscape(s) }

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

// ---- command helpers ----

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// adminCall sends one request, decodes the answer into a T and prints it
// with human (or the server's JSON with --json).
func adminCall[T any](o *adminOpts, cmd *cobra.Command, method, path string, body any, human func(io.Writer, *T)) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	return adminCallWith(o, cmd, c, method, path, body, human)
}

// adminCallWith is adminCall with a client already built.
func adminCallWith[T any](o *adminOpts, cmd *cobra.Command, c *adminClient, method, path string, body any, human func(io.Writer, *T)) error {
	var v T
	raw, err := c.do(cmd.Context(), method, path, body, &v)
	if err != nil {
		return err
	}
	return o.emit(cmd, raw, func(w io.Writer) { human(w, &v) })
}

// noContentCall sends one request whose answer is not decoded and prints
// done (or the server's JSON with --json).
func (o *adminOpts) noContentCall(cmd *cobra.Command, method, path string, body any, done string) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	raw, err := c.do(cmd.Context(), method, path, body, nil)
	if err != nil {
		return err
	}
	return o.emit(cmd, raw, func(w io.Writer) { fmt.Fprintln(w, oneLine(done)) })
}

// getList GETs path, whose answer holds a list of T under key.
func getList[T any](cmd *cobra.Command, c *adminClient, path, key string) ([]T, []byte, error) {
	// The answer is decoded into struct{ Items []T `json:"<key>"` }, so that
	// it is read exactly as a literal struct with that field would be.
	env := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "Items", Type: reflect.TypeFor[[]T](), Tag: reflect.StructTag(`json:"` + key + `"`),
	}}))
	raw, err := c.do(cmd.Context(), "GET", path, nil, env.Interface())
	items, _ := env.Elem().Field(0).Interface().([]T)
	return items, raw, err
}

// listCmd is a `list` command: it GETs path() and prints a table with one
// row per item of the list under key.
func listCmd[T any](o *adminOpts, short, key string, path func() string, header []string, row func(*T) []string) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			items, raw, err := getList[T](cmd, c, path(), key)
			if err != nil {
				return err
			}
			return o.emit(cmd, raw, func(w io.Writer) {
				rows := make([][]string, 0, len(items))
				for i := range items {
					rows = append(rows, row(&items[i]))
				}
				table(w, header, rows)
			})
		},
	}
}

// updateAtRevision sends method to path with body and body["revision"] =
// rev if known, else the revision the object has now (read first with a
// GET), and prints the answer.
func updateAtRevision[T interface{ rev() int64 }](o *adminOpts, cmd *cobra.Command, method, path string,
	body map[string]any, rev int64, known bool, human func(io.Writer, *T)) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	if !known {
		var cur T
		if _, err := c.do(cmd.Context(), "GET", path, nil, &cur); err != nil {
			return err
		}
		rev = cur.rev()
	}
	body["revision"] = rev
	return adminCallWith(o, cmd, c, method, path, body, human)
}

// putNonEmpty sets body[key] = value for the pairs key, value of kv whose
// value is not empty.
func putNonEmpty(body map[string]any, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			body[kv[i]] = kv[i+1]
		}
	}
}

// withQuery appends the pairs key, value of kv whose value is not empty to
// path as a query string.
func withQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}

// getCmd is a `get X` command showing the object at base+X.
func getCmd[T any](o *adminOpts, use, short, base string, human func(io.Writer, *T)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "GET", base+pathEsc(args[0]), nil, human)
		},
	}
}

// deleteCmd is a `delete X` command deleting the object at base+X and
// printing done+X.
func deleteCmd(o *adminOpts, use, short, base, done string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.noContentCall(cmd, "DELETE", base+pathEsc(args[0]), nil, done+args[0])
		},
	}
}

// ---- users ----

type cliUser struct {
	ID          string              `json:"id"`
	Kind        string              `json:"kind"`
	UserName    string              `json:"userName"`
	ExternalID  string              `json:"externalId"`
	DisplayName string              `json:"displayName"`
	GivenName   string              `json:"givenName"`
	FamilyName  string              `json:"familyName"`
	Title       string              `json:"title"`
	Emails      []cliEmail          `json:"emails"`
	Active      bool                `json:"active"`
	HasPassword bool                `json:"hasPassword"`
	Attributes  map[string][]string `json:"attributes"`
	Revision    int64               `json:"revision"`
	CreatedAt   time.Time           `json:"createdAt"`
	UpdatedAt   time.Time           `json:"updatedAt"`
}

type cliEmail struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

func (u cliUser) rev() int64 { return u.Revision }

func (u *cliUser) primaryEmail() string {
	for _, e := range u.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Value
	}
	return ""
}

func printUser(w io.Writer, u *cliUser) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", u.ID)
	kv("User name", u.UserName)
	kv("Kind", u.Kind)
	kv("Active", strconv.FormatBool(u.Active))
	kv("Display name", u.DisplayName)
	if u.GivenName != "" || u.FamilyName != "" {
		kv("Name", strings.TrimSpace(u.GivenName+" "+u.FamilyName))
	}
	if u.Title != "" {
		kv("Title", u.Title)
	}
	if u.ExternalID != "" {
		kv("External ID", u.ExternalID)
	}
	for _, e := range u.Emails {
		v := e.Value
		if e.Primary {
			v += " (primary)"
		}
		kv("Email", v)
	}
	kv("Password", map[bool]string{true: "set", false: "none"}[u.HasPassword])
	for _, k := range sortedKeys(u.Attributes) {
		kv("Attribute "+k, strings.Join(u.Attributes[k], ", "))
	}
	kv("Revision", strconv.FormatInt(u.Revision, 10))
	kv("Created", fmtTime(&u.CreatedAt))
	kv("Updated", fmtTime(&u.UpdatedAt))
	_ = tw.Flush()
}

// parseAttrs turns repeated key=v1,v2 flags into a map; a key given twice
// accumulates values.
func parseAttrs(in []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--attr %q: want key=value[,value...]", a)
		}
		out[k] = append(out[k], strings.Split(v, ",")...)
	}
	return out, nil
}

func parseEmails(in []string) []cliEmail {
	var out []cliEmail
	for i, e := range in {
		out = append(out, cliEmail{Value: e, Primary: i == 0})
	}
	return out
}

func adminUsersCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users and service principals"}

	var filter, kind string
	list := listCmd(o, "List users and service principals", "users",
		func() string { return withQuery("/api/v1/users", "filter", filter, "kind", kind) },
		[]string{"ID", "USERNAME", "KIND", "ACTIVE", "DISPLAY NAME", "EMAIL"},
		func(u *cliUser) []string {
			return []string{u.ID, u.UserName, u.Kind, strconv.FormatBool(u.Active), u.DisplayName, u.primaryEmail()}
		})
	list.Flags().StringVar(&filter, "filter", "", "only user names starting with this prefix")
	list.Flags().StringVar(&kind, "kind", "", "only this kind: user or service")

	get := getCmd(o, "get USER", "Show a user (by id or user name)", "/api/v1/users/", printUser)

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
			body := map[string]any{"userName": args[0]}
			putNonEmpty(body, "displayName", cf.displayName, "givenName", cf.givenName,
				"familyName", cf.familyName, "title", cf.title, "externalId", cf.externalID)
			if len(cf.emails) > 0 {
				body["emails"] = parseEmails(cf.emails)
			}
			if len(cf.attrs) > 0 {
				attrs, err := parseAttrs(cf.attrs)
				if err != nil {
					return err
				}
				body["attributes"] = attrs
			}
			if cf.service {
				body["kind"] = "service"
			}
			if cf.inactive {
				body["active"] = false
			}
			if cf.passwordStdin {
				pw, err := readPassword(cmd, "Password for "+args[0]+": ")
				if err != nil {
					return err
				}
				body["password"] = pw
			}
			return adminCall(o, cmd, "POST", "/api/v1/users", body, printUser)
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

	var uf struct {
		displayName, givenName, familyName, title, externalID, userName string
		emails, attrs                                                   []string
		active                                                          bool
		revision                                                        int64
	}
	update := &cobra.Command{
		Use: "update USER", Short: "Change fields of a user (only the flags given)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			body := map[string]any{}
			for flag, field := range map[string]string{"display-name": "displayName", "given-name": "givenName",
				"family-name": "familyName", "title": "title", "external-id": "externalId", "user-name": "userName"} {
				if fl.Changed(flag) {
					v, _ := fl.GetString(flag)
					body[field] = v
				}
			}
			if fl.Changed("email") {
				body["emails"] = parseEmails(uf.emails)
				if len(uf.emails) == 0 {
					body["emails"] = []cliEmail{}
				}
			}
			if fl.Changed("attr") {
				attrs, err := parseAttrs(uf.attrs)
				if err != nil {
					return err
				}
				body["attributes"] = attrs
			}
			if fl.Changed("active") {
				body["active"] = uf.active
			}
			if len(body) == 0 {
				return errors.New("nothing to change: give at least one field flag")
			}
			return updateAtRevision(o, cmd, "PATCH", "/api/v1/users/"+pathEsc(args[0]), body, uf.revision, uf.revision != 0, printUser)
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

	del := deleteCmd(o, "delete USER", "Delete a user with its memberships and tokens", "/api/v1/users/", "deleted ")
	action := func(verb, short string) *cobra.Command { // POST /api/v1/users/USER/<verb>
		return &cobra.Command{
			Use: verb + " USER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return adminCall(o, cmd, "POST", "/api/v1/users/"+pathEsc(args[0])+"/"+verb, nil, printUser)
			},
		}
	}
	disable := action("disable", "Disable a user; its tokens and sessions stop working at once")
	enable := action("enable", "Enable a user")
	setAttr := &cobra.Command{
		Use: "set-attr USER KEY VALUE...", Short: "Set the values of one attribute", Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "PUT", "/api/v1/users/"+pathEsc(args[0])+"/attributes/"+pathEsc(args[1]),
				map[string]any{"values": args[2:]}, printAttrs)
		},
	}
	unsetAttr := &cobra.Command{
		Use: "unset-attr USER KEY", Short: "Remove one attribute", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "DELETE", "/api/v1/users/"+pathEsc(args[0])+"/attributes/"+pathEsc(args[1]), nil, printAttrs)
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
			return o.noContentCall(cmd, "PUT", "/api/v1/users/"+pathEsc(args[0])+"/password",
				map[string]any{"password": pw}, "password set for "+args[0]+"; existing sessions were revoked")
		},
	}
	cmd.AddCommand(list, get, create, update, del, disable, enable, setAttr, unsetAttr, setPassword)
	return cmd
}

type cliAttrs struct {
	Attributes map[string][]string `json:"attributes"`
	Revision   int64               `json:"revision"`
}

func printAttrs(w io.Writer, a *cliAttrs) {
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

type cliGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
	Members     []struct {
		Value string `json:"value"`
		Type  string `json:"type"`
	} `json:"members"`
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func printGroup(w io.Writer, g *cliGroup) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", g.ID)
	kv("Display name", g.DisplayName)
	if g.ExternalID != "" {
		kv("External ID", g.ExternalID)
	}
	kv("Revision", strconv.FormatInt(g.Revision, 10))
	kv("Members", strconv.Itoa(len(g.Members)))
	_ = tw.Flush()
	if len(g.Members) > 0 {
		rows := make([][]string, 0, len(g.Members))
		for _, m := range g.Members {
			rows = append(rows, []string{m.Type, m.Value})
		}
		table(w, []string{"TYPE", "MEMBER ID"}, rows)
	}
}

func adminGroupsCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Manage groups"}

	var filter string
	list := listCmd(o, "List groups", "groups",
		func() string { return withQuery("/api/v1/groups", "filter", filter) },
		[]string{"ID", "DISPLAY NAME", "MEMBERS"},
		func(g *cliGroup) []string { return []string{g.ID, g.DisplayName, strconv.Itoa(len(g.Members))} })
	list.Flags().StringVar(&filter, "filter", "", "only display names starting with this prefix")

	get := getCmd(o, "get GROUP", "Show a group (by id or display name)", "/api/v1/groups/", printGroup)
	var members []string
	var externalID string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a group", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"displayName": args[0]}
			putNonEmpty(body, "externalId", externalID)
			if len(members) > 0 {
				refs := make([]map[string]string, 0, len(members))
				for _, m := range members {
					refs = append(refs, map[string]string{"value": m})
				}
				body["members"] = refs
			}
			return adminCall(o, cmd, "POST", "/api/v1/groups", body, printGroup)
		},
	}
	create.Flags().StringArrayVar(&members, "member", nil, "member user or group, by id or name (repeatable)")
	create.Flags().StringVar(&externalID, "external-id", "", "external (IdP) id")

	del := deleteCmd(o, "delete GROUP", "Delete a group", "/api/v1/groups/", "deleted group ")
	var memberType string
	add := &cobra.Command{
		Use: "add-member GROUP MEMBER", Short: "Add a user or group (by id or name) to a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"value": args[1]}
			if memberType != "" {
				switch strings.ToLower(memberType) {
				case "user":
					body["type"] = "User"
				case "group":
					body["type"] = "Group"
				default:
					return fmt.Errorf("--type %q: want user or group", memberType)
				}
			}
			return adminCall(o, cmd, "POST", "/api/v1/groups/"+pathEsc(args[0])+"/members", body, printGroup)
		},
	}
	add.Flags().StringVar(&memberType, "type", "", "member type when the name is ambiguous: user or group")
	remove := &cobra.Command{
		Use: "remove-member GROUP MEMBER", Short: "Remove a direct member from a group", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "DELETE", "/api/v1/groups/"+pathEsc(args[0])+"/members/"+pathEsc(args[1]), nil, printGroup)
		},
	}
	cmd.AddCommand(list, get, create, del, add, remove)
	return cmd
}

// ---- tokens ----

type cliToken struct {
	ID          string     `json:"id"`
	PrincipalID string     `json:"principalId"`
	Kind        string     `json:"kind"`
	Name        string     `json:"name"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	RevokedAt   *time.Time `json:"revokedAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt"`
	Token       string     `json:"token"`
}

func (t *cliToken) state(now time.Time) string {
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
	list := listCmd(o, "List your tokens, or (admin) another principal's", "tokens",
		func() string {
			now = time.Time{}
			return withQuery("/api/v1/tokens", "principal_id", principal)
		},
		[]string{"ID", "KIND", "NAME", "STATE", "CREATED", "EXPIRES", "LAST USED"},
		func(t *cliToken) []string {
			if now.IsZero() {
				now = time.Now()
			}
			return []string{t.ID, t.Kind, t.Name, t.state(now), fmtTime(&t.CreatedAt), fmtTime(&t.ExpiresAt), fmtTime(t.LastUsedAt)}
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
			body := map[string]any{}
			putNonEmpty(body, "name", name, "principalId", forPrincipal)
			if ttl != 0 {
				if ttl < time.Minute || ttl%time.Second != 0 {
					return fmt.Errorf("--ttl %s: want whole seconds, at least 1m", ttl)
				}
				body["ttlSeconds"] = int64(ttl / time.Second)
			}
			return adminCall(o, cmd, "POST", "/api/v1/tokens", body, func(w io.Writer, t *cliToken) {
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
			return adminCall(o, cmd, "DELETE", "/api/v1/tokens/"+pathEsc(args[0]), nil, func(w io.Writer, t *cliToken) {
				fmt.Fprintf(w, "revoked token %s\n", oneLine(t.ID))
			})
		},
	}
	cmd.AddCommand(list, create, revoke)
	return cmd
}

// ---- roles ----

type cliPolicy struct {
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

type cliRole struct {
	ID                  string            `json:"id"`
	ARN                 string            `json:"arn"`
	Name                string            `json:"name"`
	Path                string            `json:"path"`
	Description         string            `json:"description"`
	TrustPolicy         json.RawMessage   `json:"trustPolicy"`
	Policies            []cliPolicy       `json:"policies"`
	PermissionsBoundary json.RawMessage   `json:"permissionsBoundary"`
	MaxSessionDuration  int               `json:"maxSessionDuration"`
	Tags                map[string]string `json:"tags"`
	Revision            int64             `json:"revision"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
}

func printRole(w io.Writer, r *cliRole) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", r.ID)
	kv("Name", r.Name)
	kv("ARN", r.ARN)
	kv("Path", r.Path)
	if r.Description != "" {
		kv("Description", r.Description)
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
	kv("Boundary", map[bool]string{true: "set", false: "none"}[len(r.PermissionsBoundary) > 0])
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

// parseTags turns repeated key=value flags into a map.
func parseTags(in []string) (map[string]string, error) {
	out := map[string]string{}
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
	list := listCmd(o, "List roles", "roles",
		func() string { return withQuery("/api/v1/roles", "filter", filter, "pathPrefix", pathPrefix) },
		[]string{"ID", "NAME", "ARN", "MAX SESSION", "POLICIES"},
		func(r *cliRole) []string {
			return []string{r.ID, r.Name, r.ARN, (time.Duration(r.MaxSessionDuration) * time.Second).String(),
				strconv.Itoa(len(r.Policies))}
		})
	list.Flags().StringVar(&filter, "filter", "", "only role names starting with this prefix")
	list.Flags().StringVar(&pathPrefix, "path-prefix", "", "only roles whose path starts with this prefix")

	get := getCmd(o, "get ROLE", "Show a role (by id or name)", "/api/v1/roles/", printRole)

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
			body := map[string]any{"name": cf.name, "trustPolicy": trust}
			putNonEmpty(body, "path", cf.path, "description", cf.description)
			if len(cf.policies) > 0 {
				pols := make([]cliPolicy, 0, len(cf.policies))
				for _, p := range cf.policies {
					name, file, ok := strings.Cut(p, "=")
					if !ok || name == "" || file == "" {
						return fmt.Errorf("--policy %q: want name=FILE", p)
					}
					doc, err := readJSONFile(cmd, "--policy "+name, file)
					if err != nil {
						return err
					}
					pols = append(pols, cliPolicy{Name: name, Document: doc})
				}
				body["policies"] = pols
			}
			if cf.boundary != "" {
				doc, err := readJSONFile(cmd, "--permissions-boundary", cf.boundary)
				if err != nil {
					return err
				}
				body["permissionsBoundary"] = doc
			}
			if cmd.Flags().Changed("max-session-duration") {
				secs, err := durationSeconds("--max-session-duration", cf.maxSession)
				if err != nil {
					return err
				}
				body["maxSessionDuration"] = secs
			}
			if len(cf.tags) > 0 {
				tags, err := parseTags(cf.tags)
				if err != nil {
					return err
				}
				body["tags"] = tags
			}
			return adminCall(o, cmd, "POST", "/api/v1/roles", body, printRole)
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

	del := deleteCmd(o, "delete ROLE", "Delete a role with its inline policies", "/api/v1/roles/", "deleted role ")
	var revision int64
	putPolicy := &cobra.Command{
		Use: "put-policy ROLE POLICY-NAME FILE", Short: "Add or replace an inline permission policy", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := readJSONFile(cmd, "policy file", args[2])
			if err != nil {
				return err
			}
			return adminCall(o, cmd, "PUT", "/api/v1/roles/"+pathEsc(args[0])+"/policies/"+pathEsc(args[1]),
				revisioned(cmd, map[string]any{"document": doc}, revision), printRole)
		},
	}
	putPolicy.Flags().Int64Var(&revision, "revision", 0, "expected revision (default: apply to the current one)")
	delPolicy := &cobra.Command{
		Use: "delete-policy ROLE POLICY-NAME", Short: "Remove an inline permission policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "DELETE", "/api/v1/roles/"+pathEsc(args[0])+"/policies/"+pathEsc(args[1]), nil, printRole)
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
			return adminCall(o, cmd, "PUT", "/api/v1/roles/"+pathEsc(args[0])+"/trust-policy",
				revisioned(cmd, map[string]any{"document": doc}, trustRevision), printRole)
		},
	}
	setTrust.Flags().Int64Var(&trustRevision, "revision", 0, "expected revision (default: apply to the current one)")
	cmd.AddCommand(list, get, create, del, putPolicy, delPolicy, setTrust)
	return cmd
}

// revisioned adds the --revision flag's value to body when it was given.
func revisioned(cmd *cobra.Command, body map[string]any, rev int64) map[string]any {
	if cmd.Flags().Changed("revision") {
		body["revision"] = rev
	}
	return body
}

// ---- identity providers ----

type cliSAMLProvider struct {
	ID        string    `json:"id"`
	ARN       string    `json:"arn"`
	Name      string    `json:"name"`
	EntityID  string    `json:"entityId"`
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"createdAt"`
}

type cliOIDCProvider struct {
	ID          string    `json:"id"`
	ARN         string    `json:"arn"`
	IssuerURL   string    `json:"issuerUrl"`
	Audiences   []string  `json:"audiences"`
	Thumbprints []string  `json:"thumbprints"`
	JWKSURL     string    `json:"jwksUrl"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
}

func adminProvidersCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "providers", Short: "Manage the SAML and OIDC identity providers roles can trust"}
	cmd.AddCommand(adminSAMLCmd(o), adminOIDCCmd(o))
	return cmd
}

func adminSAMLCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "saml", Short: "Manage SAML 2.0 identity providers"}
	list := listCmd(o, "List SAML providers", "samlProviders",
		func() string { return "/api/v1/saml-providers" },
		[]string{"ID", "NAME", "ENTITY ID", "ARN"},
		func(p *cliSAMLProvider) []string { return []string{p.ID, p.Name, p.EntityID, p.ARN} })
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
			return adminCall(o, cmd, "POST", "/api/v1/saml-providers", map[string]any{"name": name, "metadataXml": string(b)},
				func(w io.Writer, p *cliSAMLProvider) {
					fmt.Fprintf(w, "created SAML provider %s (entity id %s)\n%s\n", oneLine(p.Name), oneLine(p.EntityID), oneLine(p.ARN))
				})
		},
	}
	create.Flags().StringVar(&name, "name", "", "provider name (letters, digits and ._-)")
	create.Flags().StringVar(&metadata, "metadata", "", "file with the IdP's SAML metadata XML")
	del := deleteCmd(o, "delete PROVIDER", "Delete a SAML provider (by id or name)", "/api/v1/saml-providers/", "deleted SAML provider ")
	cmd.AddCommand(list, create, del)
	return cmd
}

func adminOIDCCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "oidc", Short: "Manage OpenID Connect identity providers"}
	list := listCmd(o, "List OIDC providers", "oidcProviders",
		func() string { return "/api/v1/oidc-providers" },
		[]string{"ID", "ISSUER", "AUDIENCES", "ARN"},
		func(p *cliOIDCProvider) []string {
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
			body := map[string]any{"issuerUrl": cf.issuer, "audiences": cf.audiences}
			if len(cf.thumbprints) > 0 {
				body["thumbprints"] = cf.thumbprints
			}
			putNonEmpty(body, "jwksUrl", cf.jwksURL, "groupsClaim", cf.groupsClaim,
				"rolesClaim", cf.rolesClaim, "usernameClaim", cf.usernameClaim)
			return adminCall(o, cmd, "POST", "/api/v1/oidc-providers", body, func(w io.Writer, p *cliOIDCProvider) {
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
				c, err := o.client()
				if err != nil {
					return err
				}
				ps, _, err := getList[cliOIDCProvider](cmd, c, "/api/v1/oidc-providers", "oidcProviders")
				if err != nil {
					return err
				}
				id := ""
				for _, p := range ps {
					if p.IssuerURL == ref || strings.TrimRight(p.IssuerURL, "/") == strings.TrimRight(ref, "/") {
						id = p.ID
					}
				}
				if id == "" {
					return fmt.Errorf("no OIDC provider with issuer %q", ref)
				}
				ref = id
			}
			return o.noContentCall(cmd, "DELETE", "/api/v1/oidc-providers/"+pathEsc(ref), nil, "deleted OIDC provider "+args[0])
		},
	}
	cmd.AddCommand(list, create, del)
	return cmd
}

// ---- managed policies ----

type cliManagedPolicy struct {
	ID          string          `json:"id"`
	ARN         string          `json:"arn"`
	Name        string          `json:"name"`
	Path        string          `json:"path"`
	Description string          `json:"description"`
	Document    json.RawMessage `json:"document"`
	Revision    int64           `json:"revision"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

func (p cliManagedPolicy) rev() int64 { return p.Revision }

func printManagedPolicy(w io.Writer, p *cliManagedPolicy) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", p.ID)
	kv("Name", p.Name)
	kv("ARN", p.ARN)
	kv("Path", p.Path)
	if p.Description != "" {
		kv("Description", p.Description)
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
	list := listCmd(o, "List managed policies", "policies",
		func() string { return withQuery("/api/v1/policies", "filter", filter, "pathPrefix", pathPrefix) },
		[]string{"ID", "NAME", "ARN", "REVISION"},
		func(p *cliManagedPolicy) []string {
			return []string{p.ID, p.Name, p.ARN, strconv.FormatInt(p.Revision, 10)}
		})
	list.Flags().StringVar(&filter, "filter", "", "only policy names starting with this prefix")
	list.Flags().StringVar(&pathPrefix, "path-prefix", "", "only policies whose path starts with this prefix")

	get := getCmd(o, "get POLICY", "Show a managed policy (by id or name)", "/api/v1/policies/", printManagedPolicy)

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
			body := map[string]any{"name": cf.name, "document": doc}
			putNonEmpty(body, "path", cf.path, "description", cf.description)
			return adminCall(o, cmd, "POST", "/api/v1/policies", body, printManagedPolicy)
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
			body := map[string]any{"document": doc}
			if cmd.Flags().Changed("description") {
				body["description"] = uf.description
			}
			return updateAtRevision(o, cmd, "PUT", "/api/v1/policies/"+pathEsc(args[0]), body,
				uf.revision, cmd.Flags().Changed("revision"), printManagedPolicy)
		},
	}
	update.Flags().StringVar(&uf.document, "document", "", "file with the new IAM policy document")
	update.Flags().StringVar(&uf.description, "description", "", "new description")
	update.Flags().Int64Var(&uf.revision, "revision", 0, "expected revision (default: the current one)")

	del := deleteCmd(o, "delete POLICY", "Delete a managed policy (sessions naming it are then denied)", "/api/v1/policies/", "deleted policy ")
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
			body := map[string]string{"sessionId": session}
			if user != "" {
				body = map[string]string{"userName": user}
			}
			type revocation struct {
				SessionID   string `json:"sessionId"`
				DeniedUntil string `json:"deniedUntil"`
				UserID      string `json:"userId"`
				UserName    string `json:"userName"`
				NotBefore   string `json:"notBefore"`
			}
			return adminCall(o, cmd, "POST", "/api/v1/sts/revocations", body, func(w io.Writer, out *revocation) {
				if out.SessionID != "" {
					fmt.Fprintf(w, "revoked session %s (denied until %s)\n", oneLine(out.SessionID), oneLine(out.DeniedUntil))
					return
				}
				fmt.Fprintf(w, "revoked every session of %s (%s) issued before %s\n", oneLine(out.UserName), oneLine(out.UserID), oneLine(out.NotBefore))
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
			type decoded struct {
				Time           string `json:"time"`
				RequestID      string `json:"requestId"`
				Principal      string `json:"principal"`
				SourceIdentity string `json:"sourceIdentity"`
				Action         string `json:"action"`
				Resource       string `json:"resource"`
				Mount          string `json:"mount"`
				Reason         string `json:"reason"`
			}
			body := map[string]string{"message": strings.TrimSpace(msg)}
			return adminCall(o, cmd, "POST", "/api/v1/authorization-messages/decode", body, func(w io.Writer, out *decoded) {
				fmt.Fprintf(w, "denied:     %s on %s\n", oneLine(out.Action), oneLine(out.Resource))
				fmt.Fprintf(w, "principal:  %s (end user %s)\n", oneLine(out.Principal), oneLine(out.SourceIdentity))
				if out.Mount != "" {
					fmt.Fprintf(w, "mount:      %s\n", oneLine(out.Mount))
				}
				fmt.Fprintf(w, "reason:     %s\n", oneLine(out.Reason))
				fmt.Fprintf(w, "request:    %s at %s\n", oneLine(out.RequestID), oneLine(out.Time))
			})
		},
	}
}

// ---- S3 gateway mounts ----

type cliMount struct {
	ID          string    `json:"id"`
	Bucket      string    `json:"bucket"`
	Prefix      string    `json:"prefix"`
	RoleARN     string    `json:"roleArn"`
	Description string    `json:"description"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
}

func printMount(w io.Writer, m *cliMount) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, oneLine(v)) }
	kv("ID", m.ID)
	kv("Mount", "s3://"+m.Bucket+"/"+m.Prefix)
	kv("Role", m.RoleARN)
	if m.Description != "" {
		kv("Description", m.Description)
	}
	kv("Revision", strconv.FormatInt(m.Revision, 10))
	kv("Created", fmtTime(&m.CreatedAt))
	_ = tw.Flush()
}

func adminMountsCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "mounts", Short: "Manage S3 gateway mounts (bucket prefixes bound to roles)"}

	var bucketFilter string
	list := listCmd(o, "List mounts", "mounts",
		func() string { return withQuery("/api/v1/mounts", "bucket", bucketFilter) },
		[]string{"ID", "BUCKET", "PREFIX", "ROLE"},
		func(m *cliMount) []string { return []string{m.ID, m.Bucket, m.Prefix, m.RoleARN} })
	list.Flags().StringVar(&bucketFilter, "bucket", "", "only mounts of this bucket")

	get := getCmd(o, "get ID", "Show a mount", "/api/v1/mounts/", printMount)

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
				var r cliRole
				if _, err := c.do(cmd.Context(), "GET", "/api/v1/roles/"+pathEsc(cf.role), nil, &r); err != nil {
					return err
				}
				arn = r.ARN
			}
			body := map[string]any{"bucket": cf.bucket, "prefix": cf.prefix, "roleArn": arn}
			putNonEmpty(body, "description", cf.description)
			return adminCallWith(o, cmd, c, "POST", "/api/v1/mounts", body, printMount)
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

	del := deleteCmd(o, "delete ID", "Remove a mount", "/api/v1/mounts/", "deleted mount ")
	cmd.AddCommand(list, get, create, del)
	return cmd
}

// ---- privileges ----

type cliGrant struct {
	PrincipalID string `json:"principalId"`
	UserName    string `json:"userName"`
	Privilege   string `json:"privilege"`
	GrantedAt   string `json:"grantedAt"`
	GrantedBy   string `json:"grantedBy"`
}

func printGrant(w io.Writer, g *cliGrant) {
	fmt.Fprintf(w, "%s holds %s (principal %s)\n", oneLine(g.UserName), oneLine(g.Privilege), oneLine(g.PrincipalID))
}

// adminPrivilegesCmd is `gatehouse admin privileges`: who is an
// administrator (admin) and who may call SCIM (scim). These are held by
// principals, outside the directory (docs/design/0015-admin-privilege.md).
func adminPrivilegesCmd(o *adminOpts) *cobra.Command {
	cmd := &cobra.Command{Use: "privileges", Short: "Grant and revoke the admin and scim privileges"}
	list := listCmd(o, "List privilege grants", "grants",
		func() string { return "/api/v1/privileges" },
		[]string{"PRIVILEGE", "USER NAME", "PRINCIPAL ID", "GRANTED AT", "GRANTED BY"},
		func(g *cliGrant) []string {
			return []string{g.Privilege, g.UserName, g.PrincipalID, g.GrantedAt, g.GrantedBy}
		})
	grant := &cobra.Command{
		Use: "grant PRINCIPAL admin|scim", Short: "Grant a privilege (granting admin with the bootstrap token retires it)",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return adminCall(o, cmd, "PUT", "/api/v1/privileges/"+pathEsc(args[1])+"/principals/"+pathEsc(args[0]), nil, printGrant)
		},
	}
	revoke := &cobra.Command{
		Use: "revoke PRINCIPAL admin|scim", Short: "Revoke a privilege (the last admin cannot be revoked)",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.noContentCall(cmd, "DELETE", "/api/v1/privileges/"+pathEsc(args[1])+"/principals/"+pathEsc(args[0]), nil,
				args[1]+" revoked from "+args[0])
		},
	}
	cmd.AddCommand(list, grant, revoke)
	return cmd
}
