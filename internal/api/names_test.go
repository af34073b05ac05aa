package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAttackUserNamesThatWidenPolicyVariables proves issue 11 finding 3 on
// the admin REST API: no user or service principal can be created or
// renamed to a name outside AWS's user-name set, since through
// ${aws:username} "alice/x" would reach home/alice/x/* and "*" every home.
// Each attempt is a 400 in the REST error model and changes nothing.
func TestAttackUserNamesThatWidenPolicyVariables(t *testing.T) {
	e := newEnv(t)
	bad := []string{"alice/x", "*", "a*", "${aws:username}", "al?ce", "ålice", "a b", strings.Repeat("a", 65)}
	r := e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"bob"}`)
	require.Equal(t, 201, r.status, r.raw)
	bobID := r.body["id"].(string)
	for _, name := range bad {
		for _, kind := range []string{"user", "service"} {
			t.Run("create "+kind+" "+name, func(t *testing.T) {
				r := e.do(t, "POST", "/api/v1/users", e.admin, fmt.Sprintf(`{"userName":%q,"kind":%q}`, name, kind))
				require.Equal(t, 400, r.status, r.raw)
				require.Equal(t, "invalid_request", r.errCode(), r.raw)
				_, err := e.st.GetUserByName(context.Background(), name)
				require.Error(t, err, "a refused create must not store the user")
			})
		}
		t.Run("rename "+name, func(t *testing.T) {
			r := e.do(t, "PATCH", "/api/v1/users/"+bobID, e.admin, fmt.Sprintf(`{"revision":1,"userName":%q}`, name))
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalid_request", r.errCode(), r.raw)
			u, err := e.st.GetUser(context.Background(), bobID)
			require.NoError(t, err)
			require.Equal(t, "bob", u.UserName)
		})
	}
	r = e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"Al_ice+1=a,b.c@example-d.com"}`)
	require.Equal(t, 201, r.status, r.raw)
}
