package scim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAttackUserNamesThatWidenPolicyVariables proves issue 11 finding 3 on
// the SCIM side: a SCIM client (for example a compromised IdP connector)
// must not create or rename a user to a name that, through
// ${aws:username}, would widen a policy such as "home/${aws:username}/*":
// "alice/x" would reach home/alice/x/*, "*" every home. Each attempt is
// answered 400 invalidValue (RFC 7644 §3.12) and changes nothing.
func TestAttackUserNamesThatWidenPolicyVariables(t *testing.T) {
	bad := []string{"alice/x", "*", "a*", "${aws:username}", "alice x", "al?ce", "ålice", strings.Repeat("a", 65)}
	e := newEnv(t)
	victim := e.seedUser("u-bob", "bob")
	for _, name := range bad {
		t.Run("create "+name, func(t *testing.T) {
			r := e.do("POST", "/Users", userBody(name, ""))
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalidValue", r.body["scimType"], r.raw)
			list := e.do("GET", "/Users?filter="+q(fmt.Sprintf("userName eq %q", name)), "")
			require.EqualValues(t, 0, list.body["totalResults"], "a refused create must not store the user")
		})
		t.Run("put "+name, func(t *testing.T) {
			r := e.do("PUT", "/Users/"+victim.ID, userBody(name, ""))
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalidValue", r.body["scimType"], r.raw)
			require.Equal(t, "bob", e.mustUser(victim.ID).UserName)
		})
		t.Run("patch "+name, func(t *testing.T) {
			body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":%q}]}`, name)
			r := e.do("PATCH", "/Users/"+victim.ID, body)
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalidValue", r.body["scimType"], r.raw)
			require.Equal(t, "bob", e.mustUser(victim.ID).UserName)
		})
	}
	// AWS's whole character set is accepted.
	r := e.do("POST", "/Users", userBody("Al_ice+1=a,b.c@example-d.com", ""))
	require.Equal(t, 201, r.status, r.raw)
}

// TestLegacyBadNameCanStillBeDeprovisioned: a user stored before names were
// checked keeps its name through updates that do not change it, so the IdP
// can still deactivate it; it cannot be renamed to another bad name.
func TestLegacyBadNameCanStillBeDeprovisioned(t *testing.T) {
	e := newEnv(t)
	legacy := e.seedUser("u-legacy", "carol/x")
	body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`
	r := e.do("PATCH", "/Users/"+legacy.ID, body)
	require.Equal(t, 200, r.status, r.raw)
	require.False(t, e.mustUser(legacy.ID).Active)
}
