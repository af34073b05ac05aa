package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// floodPlane is one plane of the API listener under an anonymous flood.
type floodPlane struct {
	name string
	// anon builds one anonymous request (no or forged credentials).
	anon func(l *liveServer) *http.Request
	// anonCode is the code of the anonymous refusal's own record, sumCode
	// that of the summaries counting the rest.
	anonCode, sumCode audit.Code
	// legit performs bob's authenticated request during the flood and
	// checks that it was served; legitCode is the code of its own record.
	legit     func(t *testing.T, l *liveServer, b *floodUser)
	legitCode audit.Code
}

// floodUser is bob, with every credential the planes take.
type floodUser struct {
	u        *store.User
	pat, pw  string
	roleARN  string
	stsCreds aws.Credentials
}

const floodPassword = "bob-password-1"

// TestAnonymousFloodEveryPlaneKeepsAuditBounded is issue 11 finding 6 on
// every plane of the API listener (REST API and /api/v1/me, SCIM, STS,
// web sign-in),
// against a server wired as in production: a flood of anonymous requests
// with 60 KiB User-Agents grows the audit log by a bounded amount (at most
// one record per source and error code per window, plus a counted
// summary), while bob, authenticated, is served during the flood and his
// request keeps its own record naming him. Once the server has shut down
// (flushing what it counted) every refused request is accounted for: on
// its own record or in a summary's count. Before the fix each refusal
// wrote a record of its own.
func TestAnonymousFloodEveryPlaneKeepsAuditBounded(t *testing.T) {
	for _, p := range floodPlanes() {
		t.Run(p.name, func(t *testing.T) {
			// A long window: the bound below does not depend on how fast
			// a loaded machine runs the flood.
			l := startLive(t, config.Override{Path: "audit.denial_window", Value: "1m"})
			b := newFloodUser(t, l)
			before := auditBytes(t, l)
			start := time.Now()

			const flood, workers = 200, 4
			errs := make(chan error, flood)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < flood; i += workers {
						req := p.anon(l)
						req.Header.Set("User-Agent", strings.Repeat("A", 60<<10))
						resp, err := http.DefaultClient.Do(req)
						if err != nil {
							errs <- err
							continue
						}
						resp.Body.Close()
						if resp.StatusCode < 400 {
							errs <- &unexpectedStatus{resp.StatusCode}
						}
					}
				}()
			}
			p.legit(t, l, b)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			windows := int(time.Since(start)/time.Minute) + 2 // windows the flood touched, at most

			evs := l.auditEvents("")
			anonRecords := 0
			for _, ev := range evs {
				if (ev.Code == p.anonCode && ev.Actor.User == "") || ev.Code == p.sumCode {
					anonRecords++
					require.LessOrEqual(t, len(ev.Actor.UserAgent), audit.MaxUserAgent)
				}
			}
			require.LessOrEqual(t, anonRecords, 2*windows, "one record and one summary per source, code and window")
			grown := auditBytes(t, l) - before
			require.Less(t, grown, int64(32<<10)+int64(windows)*(8<<10),
				"the audit log grew by %d bytes for %d anonymous requests", grown, flood)
			require.True(t, hasRecord(evs, p.legitCode, "bob"), "bob's authenticated request has its own record")

			// Nothing lost: at shutdown the counts are flushed.
			l.stop()
			require.Equal(t, flood, refusalsAccounted(t, l.auditEvents(""), p.anonCode, p.sumCode))
		})
	}
}

func floodPlanes() []floodPlane {
	get := func(path string) func(l *liveServer) *http.Request {
		return func(l *liveServer) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, l.srv.APIURL()+path, nil)
			return req
		}
	}
	return []floodPlane{
		{name: "rest", anon: get("/api/v1/users"), anonCode: audit.CodeAuthDenied, sumCode: audit.CodeAuthDeniedAggregated,
			legit: func(t *testing.T, l *liveServer, b *floodUser) {
				require.Equal(t, http.StatusOK, bearerGet(t, l.srv.APIURL()+"/api/v1/whoami", b.pat))
				require.Equal(t, http.StatusForbidden, bearerGet(t, l.srv.APIURL()+"/api/v1/users", b.pat))
			}, legitCode: audit.CodeAdminDenied},
		{name: "rest /me", anon: get("/api/v1/me/roles"), anonCode: audit.CodeAuthDenied, sumCode: audit.CodeAuthDeniedAggregated,
			legit: func(t *testing.T, l *liveServer, b *floodUser) {
				require.Equal(t, http.StatusOK, bearerGet(t, l.srv.APIURL()+"/api/v1/me/roles", b.pat))
				// Credentials for bob, issued through STS and recorded as his.
				req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/me/credentials", strings.NewReader(`{"role":"reader"}`))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+b.pat)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
			}, legitCode: audit.CodeSTSIssued},
		{name: "scim", anon: get("/scim/v2/Users"), anonCode: audit.CodeAuthDenied, sumCode: audit.CodeAuthDeniedAggregated,
			legit: func(t *testing.T, l *liveServer, b *floodUser) {
				require.Equal(t, http.StatusForbidden, bearerGet(t, l.srv.APIURL()+"/scim/v2/Users", b.pat))
			}, legitCode: audit.CodeAdminDenied},
		{name: "sts", anon: func(l *liveServer) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/sts",
				strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		}, anonCode: audit.CodeSTSDenied, sumCode: audit.CodeSTSDeniedAggregated,
			legit: func(t *testing.T, l *liveServer, b *floodUser) {
				c := awssts.New(awssts.Options{Region: "us-east-1", BaseEndpoint: aws.String(l.srv.APIURL() + "/sts"),
					Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return b.stsCreds, nil })})
				id, err := c.GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
				require.NoError(t, err)
				require.Contains(t, *id.Arn, "/bob")
				// The role trusts web identities only: refused, and recorded as bob's.
				_, err = c.AssumeRole(context.Background(), &awssts.AssumeRoleInput{RoleArn: aws.String(b.roleARN),
					RoleSessionName: aws.String("bob")})
				require.ErrorContains(t, err, "AccessDenied")
			}, legitCode: audit.CodeSTSDenied},
		{name: "web sign-in", anon: get("/oidc/callback?code=x&state=forged"), anonCode: audit.CodeLoginFailed,
			sumCode: audit.CodeLoginFailedAggregated,
			legit: func(t *testing.T, l *liveServer, b *floodUser) {
				c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				resp, err := c.PostForm(l.srv.APIURL()+"/login", url.Values{"username": {"bob"}, "password": {b.pw}})
				require.NoError(t, err)
				resp.Body.Close()
				require.Less(t, resp.StatusCode, 400)
				require.NotEmpty(t, resp.Cookies(), "bob got a session")
			}, legitCode: audit.CodeLoginSucceeded},
	}
}

// newFloodUser makes bob: a directory user with a password, a personal
// access token (no privilege) and STS credentials on a role whose trust
// policy admits web identities only.
func newFloodUser(t *testing.T, l *liveServer) *floodUser {
	ctx := context.Background()
	b := &floodUser{u: l.user("bob"), pw: floodPassword}
	require.NoError(t, l.srv.Identity.SetPassword(ctx, b.u.ID, b.pw))
	var err error
	b.pat, _, err = l.srv.Identity.CreateToken(ctx, nil, b.u.ID, "flood", 0)
	require.NoError(t, err)
	b.roleARN = l.role("reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)
	c := l.creds(b.u, b.roleARN)
	b.stsCreds = aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return b
}

func bearerGet(t *testing.T, u, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// auditBytes is the size of the server's audit log on disk.
func auditBytes(t *testing.T, l *liveServer) int64 {
	t.Helper()
	ents, err := os.ReadDir(l.cfg.AuditDir())
	require.NoError(t, err)
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		require.NoError(t, err)
		n += fi.Size()
	}
	return n
}

func hasRecord(evs []audit.Event, code audit.Code, user string) bool {
	for _, ev := range evs {
		if ev.Code == code && ev.Actor.User == user {
			return true
		}
	}
	return false
}

// refusalsAccounted counts the anonymous refusals in evs: each record of
// anonCode without a user, plus the count of each summary of sumCode.
func refusalsAccounted(t *testing.T, evs []audit.Event, anonCode, sumCode audit.Code) int {
	t.Helper()
	n := 0
	for _, ev := range evs {
		switch {
		case ev.Code == anonCode && ev.Actor.User == "":
			n++
		case ev.Code == sumCode:
			var agg struct{ Count int }
			raw, err := json.Marshal(ev.Details["aggregate"])
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &agg))
			n += agg.Count
		}
	}
	return n
}

type unexpectedStatus struct{ code int }

func (e *unexpectedStatus) Error() string {
	return "anonymous request answered " + http.StatusText(e.code)
}
