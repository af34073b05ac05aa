package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// scaleSize is the directory `gatehouse bench scale` generates.
type scaleSize struct {
	Users, BigGroupMembers, Groups, Roles, Mounts int
}

// scaleBaseline is the baseline directory: 100 users, 10 groups,
// 2 roles, 1 mount (the caller's group holds every user).
var scaleBaseline = scaleSize{Users: 100, BigGroupMembers: 100, Groups: 10, Roles: 2, Mounts: 1}

type scaleBenchOpts struct {
	scaled   scaleSize
	requests int
	dir      string
}

func newBenchScaleCmd() *cobra.Command {
	o := scaleBenchOpts{}
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Per-request cost of the identity paths on a large generated directory vs the baseline directory",
		Long: `Generates two directories in temp data dirs, the baseline (100 users, 10 groups,
2 roles, 1 mount) and the scaled one (--users, --big-group, --groups, --roles,
--mounts), starts a server on each in this process (local backend, loopback
listeners), and measures, one caller at a time:
  role picker       GET /api/v1/me/roles
  mint credentials  POST /api/v1/me/credentials
  GET under mount   S3 GetObject under a mount whose role the caller's group entitles
  STS web identity  AssumeRoleWithWebIdentity with a gatehouse token
  GET on own role   S3 GetObject under the caller's own role
  REST call         GET /api/v1/whoami
  SCIM lookup       GET /scim/v2/Users?filter=userName eq "..."
  SCIM group PATCH  PATCH /scim/v2/Groups/{big group}: add or remove one member
It reports p50 latency, process CPU per request (getrusage; the client runs in
the same process, so this is an upper bound of the server's share) and the
process RSS after each directory, with the ratio scaled / baseline.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runScaleBench(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.scaled.Users, "users", 100_000, "users in the scaled directory")
	fl.IntVar(&o.scaled.BigGroupMembers, "big-group", 100_000, "members of the caller's group in the scaled directory")
	fl.IntVar(&o.scaled.Groups, "groups", 1_000, "groups in the scaled directory")
	fl.IntVar(&o.scaled.Roles, "roles", 10_000, "roles in the scaled directory")
	fl.IntVar(&o.scaled.Mounts, "mounts", 10_000, "mounts in the scaled directory")
	fl.IntVar(&o.requests, "requests", 200, "measured requests per scenario and directory")
	fl.StringVar(&o.dir, "dir", "", "scratch directory (default: a new temp dir, removed after)")
	return cmd
}

// scaleScenarios names the measured requests, in report order.
var scaleScenarios = []string{"role picker", "mint credentials", "GET under mount", "STS web identity",
	"GET on own role", "REST call", "SCIM lookup", "SCIM group PATCH"}

// scaleResult is one directory's figures: p50 and CPU per request by
// scenario, and the process RSS after the run.
type scaleResult struct {
	p50, cpu map[string]time.Duration
	rssKiB   int64
}

func runScaleBench(ctx context.Context, out io.Writer, o scaleBenchOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	s := o.scaled
	if o.requests < 1 || s.Users < 2 || s.BigGroupMembers < 1 || s.BigGroupMembers > s.Users || s.Groups < 1 ||
		s.Roles < 2 || s.Mounts < 1 {
		return errors.New("bench scale: --requests, --groups and --mounts must be positive, --roles at least 2, " +
			"--users at least 2 and --big-group between 1 and --users")
	}
	dir, err := os.MkdirTemp(o.dir, "gatehouse-bench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	results := map[string]*scaleResult{}
	for _, c := range []struct {
		name string
		size scaleSize
	}{{"baseline", scaleBaseline}, {"scaled", s}} {
		fmt.Fprintf(out, "gatehouse bench scale: %s: %d users, a %d-member group, %d groups, %d roles, %d mounts\n",
			c.name, c.size.Users, c.size.BigGroupMembers, c.size.Groups, c.size.Roles, c.size.Mounts)
		r, err := scaleRun(ctx, out, dir+"/"+c.name, c.size, o.requests)
		if err != nil {
			return fmt.Errorf("bench scale: %s: %w", c.name, err)
		}
		results[c.name] = r
	}
	base, big := results["baseline"], results["scaled"]
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tbaseline p50\tscaled p50\tx p50\tbaseline CPU/req\tscaled CPU/req\tx CPU\t")
	for _, n := range scaleScenarios {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t\n", n, fmtDur(base.p50[n]), fmtDur(big.p50[n]),
			ratio(big.p50[n], base.p50[n]), fmtDur(base.cpu[n]), fmtDur(big.cpu[n]), ratio(big.cpu[n], base.cpu[n]))
	}
	fmt.Fprintf(tw, "process RSS\t%d MiB\t%d MiB\t%.2f\t\t\t\t\n", base.rssKiB>>10, big.rssKiB>>10,
		float64(big.rssKiB)/float64(max(base.rssKiB, 1)))
	return tw.Flush()
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// scaleFixture is what a scenario needs from the generated directory.
type scaleFixture struct {
	srv                     *server.Server
	session, admin          string // bearer tokens: the caller (alice) and a SCIM admin
	ownRole, bigGroup, peer string // the caller's role name, the big group's id, a user to toggle
	s3                      *awss3.Client
	webToken                string
	ownRoleARN              string
}

// scaleRun generates size under dir, serves it and measures every scenario.
func scaleRun(ctx context.Context, out io.Writer, dir string, size scaleSize, n int) (*scaleResult, error) {
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
		{Path: "s3.buckets", Value: "lake"},
	})
	if err != nil {
		return nil, err
	}
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	defer func() { cancel(); <-done }()
	start := time.Now()
	f, err := scaleGenerate(ctx, srv, cfg, size)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  generated in %s\n", time.Since(start).Round(time.Millisecond))
	res := &scaleResult{p50: map[string]time.Duration{}, cpu: map[string]time.Duration{}}
	for _, name := range scaleScenarios {
		do := f.scenario(ctx, name)
		if err := do(0); err != nil { // warm caches and check it works
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		lat := make([]time.Duration, 0, n)
		cpu0 := processCPU()
		for i := range n {
			t0 := time.Now()
			if err := do(i + 1); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		res.cpu[name] = (processCPU() - cpu0) / time.Duration(n)
		slices.Sort(lat)
		res.p50[name] = lat[len(lat)/2]
		fmt.Fprintf(out, "  %-17s p50 %s  CPU/req %s\n", name, fmtDur(res.p50[name]), fmtDur(res.cpu[name]))
	}
	res.rssKiB = processRSSKiB()
	return res, nil
}

// scaleGenerate writes the directory through the server's store: users
// u000001…, alice (the caller, a member of the big group "staff"), groups,
// roles whose trust policies admit gatehouse's own tokens for one group
// each (the caller's role and the mount's role admit "staff"), and mounts
// under lake/ (one, hr/, to a role "staff" entitles).
func scaleGenerate(ctx context.Context, srv *server.Server, cfg config.Config, size scaleSize) (*scaleFixture, error) {
	st := srv.Store
	f := &scaleFixture{srv: srv, ownRole: "analyst"}
	alice := &store.User{UserName: "alice", Active: true}
	if err := st.CreateUser(ctx, alice); err != nil {
		return nil, err
	}
	members := []store.Member{{ID: alice.ID, Type: store.MemberUser}}
	for i := 1; i < size.Users; i++ {
		u := &store.User{UserName: fmt.Sprintf("u%06d", i), Active: true}
		if err := st.CreateUser(ctx, u); err != nil {
			return nil, err
		}
		if len(members) < size.BigGroupMembers {
			members = append(members, store.Member{ID: u.ID, Type: store.MemberUser})
		}
		if f.peer == "" && len(members) == size.BigGroupMembers {
			f.peer = u.ID // not in the big group: the PATCH toggles it
		}
	}
	if f.peer == "" {
		f.peer = members[len(members)-1].ID
	}
	staff := &store.Group{DisplayName: "staff", Members: members}
	if err := st.CreateGroup(ctx, staff); err != nil {
		return nil, err
	}
	f.bigGroup = staff.ID
	for i := 1; i < size.Groups; i++ {
		if err := st.CreateGroup(ctx, &store.Group{DisplayName: fmt.Sprintf("g%04d", i)}); err != nil {
			return nil, err
		}
	}
	self := srv.SSO.SelfProviderARN()
	trust := func(group string) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":%q}}}]}`,
			self, group)
	}
	lakeAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::lake","arn:aws:s3:::lake/*"]}]}`
	roles := []*store.Role{{Name: "analyst", TrustPolicy: trust("staff")}, {Name: "hr-reader", TrustPolicy: trust("staff")}}
	for i := 2; i < size.Roles; i++ {
		roles = append(roles, &store.Role{Name: fmt.Sprintf("r%05d", i), TrustPolicy: trust(fmt.Sprintf("g%04d", i%size.Groups))})
	}
	for _, r := range roles {
		r.PermissionPolicies = []store.NamedPolicy{{Name: "lake", Document: lakeAll}}
		if err := st.CreateRole(ctx, r); err != nil {
			return nil, err
		}
	}
	f.ownRoleARN = roles[0].ARN(cfg.STS.AccountID)
	mounts := []*store.Mount{{Bucket: "lake", Prefix: "hr/", RoleARN: roles[1].ARN(cfg.STS.AccountID)}}
	for i := 1; i < size.Mounts; i++ {
		r := roles[0]
		if len(roles) > 2 {
			r = roles[2+i%(len(roles)-2)]
		}
		mounts = append(mounts, &store.Mount{Bucket: "lake", Prefix: fmt.Sprintf("m%05d/", i), RoleARN: r.ARN(cfg.STS.AccountID)})
	}
	for _, m := range mounts {
		if err := srv.MountStore.CreateMount(ctx, m); err != nil {
			return nil, err
		}
	}
	if err := srv.ReloadMounts(ctx); err != nil {
		return nil, err
	}
	return f, f.signIn(ctx, alice)
}

// signIn gives alice a password and a session, makes a SCIM admin, and
// prepares S3 credentials, a web-identity token and the objects to read.
func (f *scaleFixture) signIn(ctx context.Context, alice *store.User) error {
	id := f.srv.Identity
	if err := id.SetPassword(ctx, alice.ID, "bench-scale-password-1"); err != nil {
		return err
	}
	var err error
	if f.session, _, err = id.Login(ctx, "alice", "bench-scale-password-1", identity.LoginMeta{}); err != nil {
		return err
	}
	admin := &store.User{UserName: "bench-admin", Kind: store.KindService, Active: true}
	if err := f.srv.Store.CreateUser(ctx, admin); err != nil {
		return err
	}
	if _, err := id.GrantPrivilege(ctx, admin.ID, identity.PrivilegeAdmin, "bench"); err != nil {
		return err
	}
	if f.admin, _, err = id.CreateToken(ctx, &identity.Principal{UserID: admin.ID, UserName: admin.UserName, Admin: true},
		admin.ID, "bench", time.Hour); err != nil {
		return err
	}
	var creds struct{ AccessKeyID, SecretAccessKey, SessionToken string }
	if err := f.api(ctx, http.MethodPost, "/api/v1/me/credentials", `{"role":"analyst"}`, f.session, &creds); err != nil {
		return err
	}
	ac := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	f.s3 = awss3.New(awss3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.srv.S3URL()), UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return ac, nil })})
	for _, key := range []string{"hr/salaries.csv", "own/notes.txt"} {
		if _, err := f.s3.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key),
			Body: strings.NewReader("bench,1\n")}); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	var tok struct{ Token string }
	if err := f.api(ctx, http.MethodPost, "/api/v1/me/web-identity-token", `{}`, f.session, &tok); err != nil {
		return err
	}
	f.webToken = tok.Token
	return nil
}

// api sends one JSON request to the API listener with bearer token tok
// and decodes a 2xx answer into out (nil: discard).
func (f *scaleFixture) api(ctx context.Context, method, path, body, tok string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.srv.APIURL()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	switch {
	case strings.HasPrefix(path, "/scim/"):
		req.Header.Set("Content-Type", "application/scim+json")
	case strings.HasPrefix(path, "/sts"):
		req.Header.Del("Authorization")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b[:min(len(b), 300)]))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// scenario returns the request of scenario name; i numbers the calls.
func (f *scaleFixture) scenario(ctx context.Context, name string) func(i int) error {
	get := func(key string) func(int) error {
		return func(int) error {
			o, err := f.s3.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String(key)})
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, o.Body)
			o.Body.Close()
			return err
		}
	}
	switch name {
	case "role picker":
		return func(int) error { return f.api(ctx, http.MethodGet, "/api/v1/me/roles", "", f.session, nil) }
	case "mint credentials":
		return func(int) error {
			return f.api(ctx, http.MethodPost, "/api/v1/me/credentials", `{"role":"analyst"}`, f.session, nil)
		}
	case "GET under mount":
		return get("hr/salaries.csv")
	case "STS web identity":
		form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {f.ownRoleARN}, "RoleSessionName": {"alice"}, "WebIdentityToken": {f.webToken}}.Encode()
		return func(int) error { return f.api(ctx, http.MethodPost, "/sts", form, "", nil) }
	case "GET on own role":
		return get("own/notes.txt")
	case "REST call":
		return func(int) error { return f.api(ctx, http.MethodGet, "/api/v1/whoami", "", f.session, nil) }
	case "SCIM lookup":
		return func(i int) error {
			q := url.QueryEscape(fmt.Sprintf(`userName eq "u%06d"`, 1+i%50))
			return f.api(ctx, http.MethodGet, "/scim/v2/Users?filter="+q, "", f.admin, nil)
		}
	case "SCIM group PATCH":
		return func(i int) error {
			op := "add"
			if i%2 == 1 {
				op = "remove"
			}
			body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"` + op +
				`","path":"members","value":[{"value":"` + f.peer + `"}]}]}`
			return f.api(ctx, http.MethodPatch, "/scim/v2/Groups/"+f.bigGroup, body, f.admin, nil)
		}
	}
	return func(int) error { return fmt.Errorf("unknown scenario %q", name) }
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processRSSKiB is this process's resident set size (VmRSS), or its peak
// from getrusage where /proc is missing.
func processRSSKiB() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				if err == nil {
					return n
				}
			}
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss
}
