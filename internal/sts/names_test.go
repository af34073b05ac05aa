package sts

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestAttackStoredBadUserNameGetsNoCredentials proves the STS side of
// issue 11 finding 3: a directory user stored before names were checked,
// named "carol/x", would get home/carol/x/* (and "*" every home) through
// ${aws:username}. STS refuses to issue credentials for such a user, even
// when an IdP subject is linked to it, with a clear AccessDenied instead of
// widening any policy.
func TestAttackStoredBadUserNameGetsNoCredentials(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	op, err := w.st.GetOIDCProviderByIssuer(ctx, w.oidc.issuer)
	require.NoError(t, err)
	for i, name := range []string{"carol/x", "*"} {
		u := &store.User{UserName: name, Active: true}
		require.NoError(t, w.st.CreateUser(ctx, u))
		// The IdP subject is linked to the stored user (finding 1), so the
		// bad name is what would become aws:username.
		sub := fmt.Sprintf("legacy-%d", i)
		require.NoError(t, w.st.(store.LinkStore).CreateFederatedLink(ctx, &store.FederatedLink{ProviderID: op.ID, Subject: sub,
			UserID: u.ID, Source: store.LinkSourceAdmin}))
		resp, body := w.post(webForm(w.oidc.token(t, map[string]any{"sub": sub, "preferred_username": name})), "")
		// The binder refuses the bound user before any policy sees the name.
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
		code, msg := errorCode(t, body)
		require.Equal(t, CodeAccessDenied, code)
		require.Contains(t, msg, "user name cannot be used in policies")
		require.NotContains(t, body, "SessionToken")
	}
}

// TestSessionNameParametersUseAWSRules: RoleSessionName and SourceIdentity
// parameters are checked with AWS's rules (internal/awsname) wherever they
// enter STS, and refused with ValidationError.
func TestSessionNameParametersUseAWSRules(t *testing.T) {
	w := newWorld(t)
	for _, bad := range []string{"a", "carol/x", "a*", strings.Repeat("a", 65), "ålice"} {
		form := webForm(w.oidc.token(t, nil))
		form.Set("RoleSessionName", bad)
		resp, body := w.post(form, "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		code, _ := errorCode(t, body)
		require.Equal(t, CodeValidationError, code, bad)
	}
	for _, bad := range []string{"carol/x", "aws:me", "AWS:me", "x"} {
		form := webForm(w.oidc.token(t, map[string]any{sourceIdentityClaim: bad}))
		resp, body := w.post(form, "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		code, _ := errorCode(t, body)
		require.Equal(t, CodeValidationError, code, bad)
	}
}
