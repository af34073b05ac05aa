package identity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestPrivilegesComeFromAssignmentsOnly is part of issue 11 finding 2:
// membership of a group named like the old admin group, or of any group,
// confers nothing; only a privilege assignment does.
func TestPrivilegesComeFromAssignmentsOnly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mallory := e.user(t, "mallory", store.KindUser, "gatehouse-admins", "gatehouse-scim")
	root := e.user(t, "root", store.KindUser)
	p, err := e.svc.PrincipalOf(ctx, mallory)
	require.NoError(t, err)
	require.False(t, p.Admin)
	require.False(t, p.SCIM)

	for _, tt := range []struct {
		priv        Privilege
		admin, scim bool
	}{{PrivilegeSCIM, false, true}, {PrivilegeAdmin, true, true}} {
		changed, err := e.svc.GrantPrivilege(ctx, root.ID, tt.priv, "system")
		require.NoError(t, err)
		require.True(t, changed)
		changed, err = e.svc.GrantPrivilege(ctx, root.ID, tt.priv, "system")
		require.NoError(t, err)
		require.False(t, changed, "granting twice is a no-op")
		p, err := e.svc.PrincipalOf(ctx, root)
		require.NoError(t, err)
		require.Equal(t, tt.admin, p.Admin, tt.priv)
		require.Equal(t, tt.scim, p.SCIM, tt.priv)
	}
	held, err := e.svc.HasPrivilege(ctx, root.ID)
	require.NoError(t, err)
	require.True(t, held)
	held, err = e.svc.HasPrivilege(ctx, mallory.ID)
	require.NoError(t, err)
	require.False(t, held)

	_, err = e.svc.GrantPrivilege(ctx, "no-such-principal", PrivilegeAdmin, "system")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.svc.GrantPrivilege(ctx, root.ID, "root", "system")
	require.ErrorIs(t, err, ErrInvalidPrivilege)
	_, err = e.svc.RevokePrivilege(ctx, root.ID, PrivilegeAdmin)
	require.ErrorIs(t, err, ErrInvalidPrivilege, "the last admin stays")
	changed, err := e.svc.RevokePrivilege(ctx, mallory.ID, PrivilegeAdmin)
	require.NoError(t, err)
	require.False(t, changed)
	changed, err = e.svc.RevokePrivilege(ctx, root.ID, PrivilegeSCIM)
	require.NoError(t, err)
	require.True(t, changed)
	grants, err := e.svc.ListGrants(ctx)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	require.Equal(t, Grant{PrincipalID: root.ID, Privilege: PrivilegeAdmin, GrantedAt: grants[0].GrantedAt, GrantedBy: "system"}, grants[0])
}

// TestCorruptPrivilegesFailClosed: an unreadable assignment confers nothing
// and authentication fails as unavailable, never as an admin.
func TestCorruptPrivilegesFailClosed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.user(t, "root", store.KindUser)
	require.NoError(t, e.st.PutMeta(ctx, privilegesMeta, []byte("{not json"), nil))
	_, err := e.svc.PrincipalOf(ctx, u)
	require.ErrorIs(t, err, ErrUnavailable)
}

// TestBootstrapTokenEndsWithin24h proves the bootstrap part of issue 11
// finding 9: the first-run token stops working 24 h after it was issued
// (clock injected), and RetireBootstrapToken ends it at once.
func TestBootstrapTokenEndsWithin24h(t *testing.T) {
	ctx := context.Background()
	for _, retire := range []bool{false, true} {
		e := newEnv(t)
		path := filepath.Join(t.TempDir(), "admin.token")
		created, err := e.svc.Bootstrap(ctx, path)
		require.NoError(t, err)
		require.True(t, created)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		secret := strings.TrimSpace(string(b))
		p, err := e.svc.AuthenticateRequest(bearer(secret))
		require.NoError(t, err)
		require.True(t, p.Admin)
		isBoot, err := e.svc.IsBootstrapToken(ctx, p.TokenID)
		require.NoError(t, err)
		require.True(t, isBoot)
		if retire {
			require.NoError(t, e.svc.RetireBootstrapToken(ctx, p.TokenID))
			_, err = e.svc.AuthenticateRequest(bearer(secret))
			require.ErrorIs(t, err, ErrUnauthenticated, "retired once a real admin exists")
			continue
		}
		e.clock.Add(BootstrapTokenTTL - time.Second)
		_, err = e.svc.AuthenticateRequest(bearer(secret))
		require.NoError(t, err, "still valid just before 24 h")
		e.clock.Add(time.Second)
		_, err = e.svc.AuthenticateRequest(bearer(secret))
		require.ErrorIs(t, err, ErrUnauthenticated, "expired at 24 h")
	}
}

// TestBootstrapAdoptsEarlierAdmin: a store bootstrapped by an earlier
// version (marker done, no privilege assignments) keeps its bootstrap
// principal as admin, once, and nobody else.
func TestBootstrapAdoptsEarlierAdmin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	boot := e.user(t, BootstrapPrincipal, store.KindService, "gatehouse-admins")
	other := e.user(t, "alice", store.KindUser, "gatehouse-admins")
	marker, err := json.Marshal(bootstrapState{State: "done", At: e.clock.Now(), PrincipalID: boot.ID, TokenID: "t1"})
	require.NoError(t, err)
	require.NoError(t, e.st.PutMeta(ctx, BootstrapMetaKey, marker, nil))

	created, err := e.svc.Bootstrap(ctx, "")
	require.NoError(t, err)
	require.False(t, created)
	grants, err := e.svc.ListGrants(ctx)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	require.Equal(t, boot.ID, grants[0].PrincipalID)
	p, err := e.svc.PrincipalOf(ctx, other)
	require.NoError(t, err)
	require.False(t, p.Admin, "group membership is not imported")
}
