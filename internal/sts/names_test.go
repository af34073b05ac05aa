package sts

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestAttackStoredBadUserNameGetsNoCredentials proves the STS side of
// issue 11 finding 3: a directory user stored before names were checked,
// named "carol/x", would get home/carol/x/* (and "*" every home) through
// ${aws:username}. STS refuses to issue credentials for such a user with
// a clear ValidationError instead of widening any policy.
func TestAttackStoredBadUserNameGetsNoCredentials(t *testing.T) {
	w := newWorld(t)
	for _, name := range []string{"carol/x", "*"} {
		require.NoError(t, w.st.CreateUser(context.Background(), &store.User{UserName: name, Active: true}))
		resp, body := w.post(webForm(w.oidc.token(t, map[string]any{"preferred_username": name})), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		code, msg := errorCode(t, body)
		require.Equal(t, CodeValidationError, code)
		require.Contains(t, msg, "aws:username")
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
