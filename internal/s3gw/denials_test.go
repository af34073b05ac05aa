package s3gw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// settableClock is an injected clock that moves only when told to.
type settableClock struct{ off atomic.Int64 }

var clockBase = time.Now()

func (c *settableClock) now() time.Time { return clockBase.Add(time.Duration(c.off.Load())) }

func (c *settableClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// openAuditLog opens a real hash-chained audit log and returns it with the
// path of its file.
func openAuditLog(t *testing.T, clock func() time.Time) (*audit.Log, string) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	dir := t.TempDir()
	l, err := audit.Open(audit.Options{Dir: dir, Mode: audit.ModeSync, MasterKey: key, Clock: clock})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l, filepath.Join(dir, "audit.log")
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// TestAnonymousFloodCostsTheAuditLogABoundedAmount is the attack of issue 11
// finding 6: a flood of anonymous requests with 60 KiB User-Agents at the S3
// listener. Before the fix every one of them wrote a record holding the
// User-Agent twice (about 120 KiB each); now attacker-chosen fields are
// clipped, and the denials of one source and error code in one window make
// one record plus one counted summary. A signed user is served throughout,
// and each of their requests keeps its own record.
func TestAnonymousFloodCostsTheAuditLogABoundedAmount(t *testing.T) {
	clock := &settableClock{}
	log, logPath := openAuditLog(t, clock.now)
	e := newEnv(t, envOptions{clock: clock.now, emitter: log, maxHeaderBytes: 64 << 10})
	alice := e.client(e.creds("alice", roleARNs.analyst, ""))
	ctx := context.Background()
	before := fileSize(t, logPath)

	const flood, workers = 400, 8
	bigUA := strings.Repeat("A", 60<<10)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += workers {
				req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/data/home/alice/secret.txt", nil)
				require.NoError(t, err)
				req.Header.Set("User-Agent", bigUA)
				resp, err := e.srv.Client().Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.GreaterOrEqual(t, resp.StatusCode, 400)
				sent.Add(1)
			}
		}()
	}
	// The legitimate user, during the flood.
	served := 0
	for i := 0; i < 20; i++ {
		_, err := alice.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"),
			Key: aws.String("home/alice/f.txt"), Body: bytes.NewReader([]byte("hello"))})
		require.NoError(t, err)
		served++
	}
	wg.Wait()
	require.Equal(t, 20, served)
	require.EqualValues(t, flood, sent.Load())

	grown := fileSize(t, logPath) - before
	// 20 signed PutObjects (each its own record, ~2 KiB) and one record of
	// the anonymous flood (User-Agent clipped to 256 bytes).
	require.Less(t, grown, int64(64<<10), "the audit log grew by %d bytes for %d anonymous requests", grown, flood)
	puts := 0
	for _, ev := range e.audit.find("PutObject") {
		require.Equal(t, audit.CodeS3Access, ev.Code)
		puts++
	}
	require.Equal(t, 20, puts, "every authenticated request keeps its own record")
	var denied []audit.Event
	for _, ev := range e.audit.all() {
		if ev.Code == audit.CodeS3Denied {
			denied = append(denied, ev)
		}
	}
	require.Len(t, denied, 1, "one record per source and error code per window")
	require.Equal(t, audit.CodeS3Denied, denied[0].Code)
	require.Len(t, denied[0].Actor.UserAgent, audit.MaxUserAgent)
	ct := denied[0].Details["cloudTrail"].(map[string]any)
	require.Len(t, ct["userAgent"], audit.MaxUserAgent)

	// The window passes: the rest of the flood is one counted summary.
	clock.advance(time.Second)
	require.NoError(t, e.gw.FlushDenials(ctx, false))
	var summary []audit.Event
	for _, ev := range e.audit.all() {
		if ev.Code == audit.CodeS3DeniedAggregated {
			summary = append(summary, ev)
		}
	}
	require.Len(t, summary, 1)
	agg := summary[0].Details["aggregate"].(map[string]any)
	require.EqualValues(t, flood-1, agg["count"])
	require.Equal(t, "127.0.0.1", agg["source"])
	require.Less(t, fileSize(t, logPath)-before, int64(64<<10))
}

// TestRefusalRecordsClipEveryAttackerChosenField: one refused request that
// stuffs every field it controls (User-Agent, Host, Range, key, query
// parameters, access key id) still makes a small record. Issue 11 finding 6.
func TestRefusalRecordsClipEveryAttackerChosenField(t *testing.T) {
	e := newEnv(t, envOptions{maxHeaderBytes: 64 << 10})
	long := strings.Repeat("x", 8<<10)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/data/"+strings.Repeat("k", 2000)+"?list-type=2&prefix="+long, nil)
	require.NoError(t, err)
	req.Header.Set("User-Agent", long)
	req.Header.Set("Range", "bytes="+long)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA"+long+"/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.GreaterOrEqual(t, resp.StatusCode, 400)
	evs := e.audit.all()
	require.Len(t, evs, 1)
	b := mustJSON(t, evs[0])
	require.Less(t, len(b), 8<<10, "a refused request made a record of %d bytes", len(b))
}

// TestRevokedCredentialsSayWhyAndAreAttributed is issue 11 finding 11: a
// session token that opens but whose credentials were revoked is refused
// with AccessDenied "credentials revoked: …" (not "token malformed"), and
// the record of the refusal names the user and the access key id. A
// presigned request that fails is recorded as QueryString with its access
// key id. Someone who has the token but not the secret learns nothing.
func TestRevokedCredentialsSayWhyAndAreAttributed(t *testing.T) {
	clock := &settableClock{}
	e := newEnv(t, envOptions{clock: clock.now})
	ctx := context.Background()
	creds := e.creds("alice", roleARNs.analyst, "")
	alice := e.client(creds)
	_, err := alice.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"),
		Key: aws.String("home/alice/a.txt"), Body: bytes.NewReader([]byte("a"))})
	require.NoError(t, err)

	// A presigned URL made before the revocation, then tampered with: a
	// failed presigned request.
	ps := awss3.NewPresignClient(alice)
	pre, err := ps.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("home/alice/a.txt")},
		awss3.WithPresignExpires(5*time.Minute))
	require.NoError(t, err)
	resp, err := e.srv.Client().Get(strings.Replace(pre.URL, "a.txt", "b.txt", 1))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	failed := e.audit.find("GetObject")
	require.Len(t, failed, 1)
	ct := failed[0].Details["cloudTrail"].(map[string]any)
	require.Equal(t, "SignatureDoesNotMatch", ct["errorCode"])
	require.Equal(t, "QueryString", ct["additionalEventData"].(map[string]any)["AuthenticationMethod"])
	require.Equal(t, creds.AccessKeyID, ct["userIdentity"].(map[string]any)["accessKeyId"])

	clock.advance(time.Second)
	require.NoError(t, e.revoker.RevokeUser(ctx, "u-alice", clock.now()))

	_, err = alice.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("home/alice/a.txt")})
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "AccessDenied", ae.ErrorCode())
	require.Contains(t, ae.ErrorMessage(), "credentials revoked: all sessions of the user revoked")
	refused := e.audit.find("GetObject")[1]
	require.Equal(t, audit.CodeS3Denied, refused.Code)
	require.Equal(t, "alice", refused.Actor.User)
	require.Equal(t, "u-alice", refused.Actor.UserID)
	ui := refused.Details["cloudTrail"].(map[string]any)["userIdentity"].(map[string]any)
	require.Equal(t, creds.AccessKeyID, ui["accessKeyId"])
	require.Equal(t, "alice", ui["userName"])

	// The token without the secret: the signature is checked first.
	thief := e.client(credentialsWithSecret(creds, "not-the-secret"))
	_, err = thief.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("home/alice/a.txt")})
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "SignatureDoesNotMatch", ae.ErrorCode())
	require.NotContains(t, ae.ErrorMessage(), "revoked")
}

// mustJSON encodes v as the audit log would.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// credentialsWithSecret is c with another secret access key.
func credentialsWithSecret(c credentials.Credentials, secret string) credentials.Credentials {
	c.SecretAccessKey = secret
	return c
}
