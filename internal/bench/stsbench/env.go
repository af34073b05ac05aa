// Package stsbench is the `gatehouse bench sts` scenario: the AWS SDK for
// Go v2 calling AssumeRoleWithWebIdentity with RS256 ID tokens over
// loopback, against
//
//   - gatehouse: the real STS handler (sts.New) with the real SQLite store,
//     the real audit log at the default durability, the real keyring and issuer, and an
//     OIDC provider whose JWKS is served by an in-process IdP; and
//   - floor: a server that only parses the JWT (no signature check) and
//     returns a canned AssumeRoleWithWebIdentity response captured from the
//     real handler, so both sides send and parse the same bytes.
//
// Both sides run in the same process, interleaved in rounds, so machine
// drift hits both. See docs/benchmarks.md ("STS issuance").
package stsbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/bench/stsstack"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
)

// The bench world: one account, one OIDC IdP on loopback, one role.
const (
	AccountID = "000000000000"
	ClientID  = "gatehouse-bench"
	RoleName  = "BenchRole"
	kid       = "bench-k1"
	acsURL    = "https://gatehouse.bench.invalid/saml/acs"
)

// Side names one of the two servers measured.
type Side string

const (
	Gatehouse Side = "gatehouse"
	Floor     Side = "floor"
)

// EnvOptions configure Setup.
type EnvOptions struct {
	// Dir is where the scratch directory for the SQLite database and the
	// audit log is created (default os.TempDir()); Close removes it.
	Dir string
	// Tokens is the size of the pre-minted token pool (default 2048). Every
	// token has its own jti, sub and preferred_username.
	Tokens int
}

// Env is the running bench world. Close it.
type Env struct {
	RoleARN string
	Issuer  string
	// Tokens are RS256 ID tokens valid for one hour from Setup.
	Tokens []string
	// URL of each side's STS endpoint.
	URL map[Side]string
	// Service is the real STS handler (for handler-only benchmarks).
	Service *sts.Service
	// AuditDir holds the audit log of the real handler.
	AuditDir string

	stack          *stsstack.Stack
	st             *sqlite.Store
	idp, real, flr *httptest.Server
	canned         []byte
}

// Setup builds the world: store, audit log, keyring, IdP, role, both
// servers, and the token pool. It captures the floor's canned response from
// one real issuance.
func Setup(ctx context.Context, o EnvOptions) (_ *Env, err error) {
	if o.Tokens <= 0 {
		o.Tokens = 2048
	}
	e := &Env{URL: map[Side]string{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.stack, err = stsstack.New(ctx, o.Dir, "gatehouse-bench-sts-"); err != nil {
		return nil, err
	}
	e.AuditDir = e.stack.AuditDir
	e.st = e.stack.Store

	// The IdP: discovery and JWKS (one RSA-2048 key) on loopback.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	e.idp = httptest.NewServer(mux)
	e.Issuer = e.idp.URL + "/realms/bench"
	mux.HandleFunc("/realms/bench/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": e.Issuer, "jwks_uri": e.Issuer + "/keys",
			"authorization_endpoint": e.Issuer + "/auth", "token_endpoint": e.Issuer + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/realms/bench/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"},
		}})
	})

	// Bench users are in no directory: each token is a federated session
	// of its own (docs/design/0014-identity-binding.md).
	prov := &store.OIDCProvider{IssuerURL: e.Issuer, Audiences: []string{ClientID},
		Binding: store.Binding{Unlinked: store.UnlinkedFederated}}
	if err = e.st.CreateOIDCProvider(ctx, prov); err != nil {
		return nil, fmt.Errorf("stsbench: OIDC provider: %w", err)
	}
	provKey := store.OIDCIssuerKey(e.Issuer)
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{%q:%q}}}]}`,
		prov.ARN(AccountID), provKey+":aud", ClientID)
	role := &store.Role{
		Name: RoleName, TrustPolicy: trust, MaxSessionDuration: 3600,
		PermissionPolicies: []store.NamedPolicy{{Name: "data", Document: `{"Version":"2012-10-17","Statement":[` +
			`{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data/${aws:username}/*"}]}`}},
	}
	if err = e.st.CreateRole(ctx, role); err != nil {
		return nil, fmt.Errorf("stsbench: role: %w", err)
	}
	e.RoleARN = role.ARN(AccountID)

	e.Service, err = sts.New(sts.Options{
		Store: e.st, Audit: e.stack.Audit,
		Issuer: e.stack.Issuer, Verifier: e.stack.Verifier,
		AccountID: AccountID, ACSURL: acsURL,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	e.real = httptest.NewServer(e.Service)
	e.URL[Gatehouse] = e.real.URL + "/sts"

	if e.Tokens, err = mintTokens(key, e.Issuer, o.Tokens); err != nil {
		return nil, err
	}

	// The floor answers with a real gatehouse response, captured once.
	extra, err := mintTokens(key, e.Issuer, 1)
	if err != nil {
		return nil, err
	}
	if e.canned, err = e.capture(ctx, extra[0]); err != nil {
		return nil, err
	}
	e.flr = httptest.NewServer(http.HandlerFunc(e.serveFloor))
	e.URL[Floor] = e.flr.URL + "/sts"
	return e, nil
}

// Close stops the servers and removes the scratch directory it created.
func (e *Env) Close() error {
	for _, s := range []*httptest.Server{e.real, e.flr, e.idp} {
		if s != nil {
			s.Close()
		}
	}
	if e.stack == nil {
		return nil
	}
	return e.stack.Close()
}

// mintTokens signs n RS256 ID tokens, each with its own jti, sub and user
// name, on all cores.
func mintTokens(key *rsa.PrivateKey, issuer string, n int) ([]string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				jti := make([]byte, 16)
				_, _ = rand.Read(jti)
				user := fmt.Sprintf("user%05d-%s", i, hex.EncodeToString(jti[:3]))
				payload, err := json.Marshal(map[string]any{
					"iss": issuer, "aud": ClientID, "sub": "sub-" + hex.EncodeToString(jti[3:11]),
					"jti": hex.EncodeToString(jti), "iat": now.Add(-10 * time.Second).Unix(),
					"exp": now.Add(time.Hour).Unix(), "preferred_username": user + "@bench.example",
					"email": user + "@bench.example", "groups": []string{"analysts", "bench"},
				})
				if err != nil {
					errs[i] = err
					continue
				}
				jws, err := signer.Sign(payload)
				if err != nil {
					errs[i] = err
					continue
				}
				out[i], errs[i] = jws.CompactSerialize()
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// SessionName is the RoleSessionName the bench sends with token i.
func SessionName(i int) string { return fmt.Sprintf("bench-%05d", i) }

// capture performs one real issuance with a plain form POST and returns the
// response body.
func (e *Env) capture(ctx context.Context, token string) ([]byte, error) {
	form := url.Values{
		"Action": {sts.ActionAssumeRoleWithWebIdentity}, "Version": {sts.APIVersion},
		"RoleArn": {e.RoleARN}, "RoleSessionName": {"bench-capture"}, "WebIdentityToken": {token},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL[Gatehouse], strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stsbench: gatehouse refused the capture issuance: %s: %s", resp.Status, b)
	}
	return b, nil
}

// floorClaims are the claims the floor reads.
type floorClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// serveFloor parses the form and the JWT (compact JWS structure, header and
// claims; the signature is not checked) and writes the canned response.
func (e *Env) serveFloor(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		floorError(w, "MalformedInput", err.Error())
		return
	}
	if r.PostForm.Get("Action") != sts.ActionAssumeRoleWithWebIdentity || r.PostForm.Get("RoleArn") == "" ||
		r.PostForm.Get("RoleSessionName") == "" {
		floorError(w, "ValidationError", "bad request")
		return
	}
	jws, err := jose.ParseSignedCompact(r.PostForm.Get("WebIdentityToken"), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		floorError(w, "InvalidIdentityToken", err.Error())
		return
	}
	var c floorClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil || c.Iss != e.Issuer || c.Sub == "" {
		floorError(w, "InvalidIdentityToken", "bad claims")
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(e.canned)))
	_, _ = w.Write(e.canned)
}

func floorError(w http.ResponseWriter, code, msg string) {
	var b bytes.Buffer
	b.WriteString(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString(`</Code><Message>`)
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</Message></Error><RequestId>floor</RequestId></ErrorResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b.Bytes())
}

// NewClient returns an aws-sdk-go-v2 STS client for side, with its own
// keep-alive connection pool sized for conc callers, anonymous credentials
// (AssumeRoleWithWebIdentity is unsigned) and no retries, so every error
// is seen. Call the returned close func when done.
func (e *Env) NewClient(side Side, conc int) (*awssts.Client, func()) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conc,
		MaxIdleConnsPerHost: 2 * conc,
		IdleConnTimeout:     90 * time.Second,
	}
	c := awssts.New(awssts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.URL[side]),
		HTTPClient:   &http.Client{Transport: tr, Timeout: 30 * time.Second},
		Credentials:  aws.AnonymousCredentials{},
		Retryer:      aws.NopRetryer{},
	})
	return c, tr.CloseIdleConnections
}

// Call performs issuance i (token i mod pool size) with c and checks that
// credentials came back.
func (e *Env) Call(ctx context.Context, c *awssts.Client, i int) error {
	n := i % len(e.Tokens)
	out, err := c.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(e.RoleARN),
		RoleSessionName:  aws.String(SessionName(n)),
		WebIdentityToken: aws.String(e.Tokens[n]),
	})
	if err != nil {
		return err
	}
	if out.Credentials == nil || out.Credentials.AccessKeyId == nil || !strings.HasPrefix(*out.Credentials.AccessKeyId, "ASIA") {
		return errors.New("stsbench: response without credentials")
	}
	return nil
}
