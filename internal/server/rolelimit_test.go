package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// mintViaAPI calls POST /api/v1/me/credentials with bearer token tok for
// role and returns the credentials the server minted.
func (l *liveServer) mintViaAPI(tok, role string) credentials.Credentials {
	l.t.Helper()
	body, err := json.Marshal(map[string]any{"role": role})
	require.NoError(l.t, err)
	req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/me/credentials", bytes.NewReader(body))
	require.NoError(l.t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(l.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(l.t, err)
	require.Equal(l.t, http.StatusOK, resp.StatusCode, string(raw))
	var out struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
	}
	require.NoError(l.t, json.Unmarshal(raw, &out))
	return credentials.Credentials{AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey, SessionToken: out.SessionToken}
}

// TestRestrictedSessionCannotWidenThroughMount proves the first gap left by
// issue 11 (finding 9, "tokens cannot widen the session that made them"):
// a personal access token restricted to role "reader" mints credentials for
// "reader", then reads under a mount bound to role "hr", which the user's
// groups alone would qualify for. The credentials must carry the token's
// restriction, so the mount refuses them; credentials minted with an
// unrestricted token still pass.
func TestRestrictedSessionCannotWidenThroughMount(t *testing.T) {
	ctx := context.Background()
	l := startLive(t)
	reader := l.role("reader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/public/*"}]}`)
	hr := l.role("hr", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/hr/*"}]}`)
	require.NoError(t, l.srv.MountStore.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: hr}))
	require.NoError(t, l.srv.ReloadMounts(ctx))
	u := l.user("alice")
	require.NoError(t, putObj(l.s3(l.creds(u, hr), nil), "lake", "hr/salaries.csv", "secret"))

	open, parent, err := l.srv.Identity.CreateToken(ctx, nil, u.ID, "open", 0)
	require.NoError(t, err)
	restricted, _, err := l.srv.Identity.CreateToken(ctx, &identity.Principal{UserID: u.ID, UserName: u.UserName,
		TokenID: parent.ID, AuthMethod: "token", TokenExpiresAt: parent.ExpiresAt,
		RoleLimit: []store.RoleGrant{{RoleARN: reader}}}, u.ID, "reader only", 0)
	require.NoError(t, err)

	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"unrestricted token reaches the mount", open, ""},
		{"token restricted to reader is refused at the hr mount", restricted, "AccessDenied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := l.mintViaAPI(tc.token, reader)
			_, err := getObj(l.s3(c, nil), "lake", "hr/salaries.csv")
			require.Equal(t, tc.want, errCode(err))
		})
	}
}
