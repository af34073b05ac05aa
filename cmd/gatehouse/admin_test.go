package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memAudit) Emit(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, e)
	return nil
}

// startAdminAPI runs the real REST API over a real SQLite store and
// returns its URL and a bootstrap admin token.
func startAdminAPI(t *testing.T) (string, string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	em := &memAudit{}
	svc := identity.NewService(st, em, identity.Options{
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	tokFile := filepath.Join(t.TempDir(), "bootstrap.token")
	created, err := svc.Bootstrap(ctx, tokFile)
	require.NoError(t, err)
	require.True(t, created)
	tok, err := os.ReadFile(tokFile)
	require.NoError(t, err)
	h, err := api.New(api.Options{Store: st, Identity: svc, Audit: em})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv("GATEHOUSE_TOKEN", "")
	t.Setenv("GATEHOUSE_SERVER", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	return srv.URL, strings.TrimSpace(string(tok))
}

func runCmd(t *testing.T, cmd *cobra.Command, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SilenceErrors = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestAdminCLI(t *testing.T) {
	url, tok := startAdminAPI(t)
	g := []string{"--server", url, "--token", tok}
	admin := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, _, err := runCmd(t, newAdminCmd(), stdin, append(args, g...)...)
		return out, err
	}

	out, err := admin("", "users", "create", "alice", "--display-name", "Alice Liddell",
		"--email", "alice@example.com", "--attr", "region=EU", "--attr", "purpose=a,b")
	require.NoError(t, err, out)
	require.Contains(t, out, "Alice Liddell")
	require.Contains(t, out, "a, b")

	out, err = admin("", "users", "create", "robot", "--service")
	require.NoError(t, err, out)

	out, err = admin("", "users", "list")
	require.NoError(t, err)
	require.Contains(t, out, "USERNAME")
	require.Contains(t, out, "alice@example.com")
	require.Contains(t, out, "bootstrap-admin")
	require.Contains(t, out, "service")

	out, err = admin("", "users", "list", "--json")
	require.NoError(t, err)
	var lst struct {
		Users []map[string]any `json:"users"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &lst))
	require.Len(t, lst.Users, 3)

	out, err = admin("", "users", "update", "alice", "--title", "Queen")
	require.NoError(t, err, out)
	require.Contains(t, out, "Queen")
	_, err = admin("", "users", "update", "alice", "--title", "Stale", "--revision", "1")
	var se *serverError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "conflict", se.Code)
	require.NotEmpty(t, se.RequestID)
	require.Contains(t, err.Error(), "request id "+se.RequestID)

	out, err = admin("", "users", "set-attr", "alice", "team", "data", "ml")
	require.NoError(t, err)
	require.Contains(t, out, "data, ml")
	out, err = admin("", "users", "unset-attr", "alice", "region")
	require.NoError(t, err)
	require.NotContains(t, out, "region")

	out, err = admin("alice-password-1\n", "users", "set-password", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "password set")

	out, err = admin("", "groups", "create", "analysts", "--member", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "Members:")
	out, err = admin("", "groups", "add-member", "analysts", "robot", "--type", "user")
	require.NoError(t, err, out)
	out, err = admin("", "groups", "list")
	require.NoError(t, err)
	require.Contains(t, out, "analysts")
	require.Contains(t, out, identity.DefaultAdminGroup)
	out, err = admin("", "groups", "remove-member", "analysts", "robot")
	require.NoError(t, err)
	out, err = admin("", "groups", "get", "analysts", "--json")
	require.NoError(t, err)
	require.Contains(t, out, `"members"`)

	// Tokens: the secret alone on stdout, usable at once.
	out, err = admin("", "tokens", "create", "--name", "ci", "--principal", "robot", "--ttl", "24h")
	require.NoError(t, err, out)
	robotTok := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(robotTok, "ghp_"), out)
	out, err = admin("", "tokens", "list", "--principal", "robot")
	require.NoError(t, err)
	require.Contains(t, out, "ci")
	require.Contains(t, out, "active")
	id := strings.Split(robotTok, "_")[1]

	// A non-admin token is refused admin operations with the server's message.
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "list", "--server", url, "--token", robotTok)
	require.ErrorAs(t, err, &se)
	require.Equal(t, "forbidden", se.Code)
	require.Equal(t, 403, se.Status)

	out, err = admin("", "tokens", "revoke", id)
	require.NoError(t, err)
	require.Contains(t, out, "revoked")
	_, _, err = runCmd(t, newAdminCmd(), "", "tokens", "list", "--server", url, "--token", robotTok)
	require.ErrorAs(t, err, &se)
	require.Equal(t, 401, se.Status)

	out, err = admin("", "users", "disable", "alice")
	require.NoError(t, err)
	require.Contains(t, out, "false")
	out, err = admin("", "users", "enable", "alice")
	require.NoError(t, err)
	out, err = admin("", "groups", "delete", "analysts")
	require.NoError(t, err, out)
	out, err = admin("", "users", "delete", "robot")
	require.NoError(t, err, out)
	_, err = admin("", "users", "get", "robot")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "not_found", se.Code)

	// Token from a file and from the environment.
	tf := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(tf, []byte(tok+"\n"), 0o600))
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url, "--token-file", tf)
	require.NoError(t, err)
	t.Setenv("GATEHOUSE_TOKEN", tok)
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url)
	require.NoError(t, err)
	t.Setenv("GATEHOUSE_TOKEN", "")
	_, _, err = runCmd(t, newAdminCmd(), "", "users", "get", "alice", "--server", url)
	require.ErrorContains(t, err, "no token")

	// Login stores a session the admin commands then use.
	out, _, err = runCmd(t, newLoginCmd(), "alice-password-1\n", "--server", url, "--username", "alice")
	require.NoError(t, err, out)
	require.Contains(t, out, "logged in")
	p, err := credentialsPath()
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	out, _, err = runCmd(t, newAdminCmd(), "", "tokens", "list", "--server", url)
	require.NoError(t, err, out)
	require.Contains(t, out, "session")
	_, _, err = runCmd(t, newLoginCmd(), "wrong-password\n", "--server", url, "--username", "alice")
	require.ErrorAs(t, err, &se)
	require.Equal(t, "unauthenticated", se.Code)
	require.False(t, errors.Is(err, io.EOF))
}
