package decision_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
)

const selfARN = "arn:aws:iam::000000000000:oidc-provider/gatehouse.test"

// TestPickerIndexPrunesOnlyWhatCannotMatch (issue 12 §1: index trust
// policies, evaluate only the candidates): for trust policies of every
// shape the index knows (group, user name and subject conditions) and does
// not (other keys, variables, IfExists, wildcard and Not principals,
// Deny), the roles Pickable returns are exactly those whose trust policy,
// evaluated in full, admits the principal.
func TestPickerIndexPrunesOnlyWhatCannotMatch(t *testing.T) {
	trusts := map[string]string{
		"group-team":     `"Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":["team","ops"]}}`,
		"group-plain":    `"Condition":{"StringEquals":{"gatehouse:groups":"team"}}`,
		"group-other":    `"Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":"finance"}}`,
		"user-alice":     `"Condition":{"StringEquals":{"gatehouse:username":"alice"}}`,
		"user-bob":       `"Condition":{"StringEquals":{"gatehouse:username":"bob"}}`,
		"user-variable":  `"Condition":{"StringEquals":{"gatehouse:username":"${gatehouse:username}"}}`,
		"group-ifexists": `"Condition":{"StringEqualsIfExists":{"gatehouse:groups":"finance"}}`,
		"group-like":     `"Condition":{"ForAnyValue:StringLike":{"gatehouse:groups":"te*"}}`,
		"unconditional":  ``,
		"aud-only":       `"Condition":{"StringEquals":{"gatehouse.test:aud":"gatehouse"}}`,
	}
	s := newStack(t)
	stmt := func(principal, cond string) string {
		if cond != "" {
			cond = "," + cond
		}
		return fmt.Sprintf(`{"Effect":"Allow","Principal":%s,"Action":"sts:AssumeRoleWithWebIdentity"%s}`, principal, cond)
	}
	var names []string
	for name, cond := range trusts {
		for _, pr := range []string{`{"Federated":"` + selfARN + `"}`, `"*"`, `{"Federated":"arn:aws:iam::000000000000:oidc-provider/elsewhere"}`} {
			n := fmt.Sprintf("%s-%d", name, len(names))
			s.role(n, `{"Version":"2012-10-17","Statement":[`+stmt(pr, cond)+`]}`, allowAll)
			names = append(names, n)
		}
	}
	s.role("denied-team", `{"Version":"2012-10-17","Statement":[`+stmt(`"*"`, "")+`,
{"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"ForAnyValue:StringEquals":{"gatehouse:groups":"team"}}}]}`, allowAll)
	names = append(names, "denied-team")

	ctx := context.Background()
	for _, pr := range []decision.Principal{
		{UserID: "u1", UserName: "alice", Groups: []string{"team"}},
		{UserID: "u2", UserName: "bob", Groups: []string{"finance", "ops"}},
		{UserID: "u3", UserName: "carol"},
	} {
		got, err := s.dp.Pickable(ctx, decision.PickRequest{Principal: pr})
		require.NoError(t, err)
		tctx := decision.TrustContext(selfIssuer, pr.UserID, []string{"gatehouse"}, &pr, nil)
		tctx["sts:rolesessionname"] = []string{pr.UserName}
		tctx["aws:federatedprovider"] = []string{selfARN}
		var want []string
		for _, n := range names {
			role, err := s.dp.RoleOfARN(ctx, "arn:aws:iam::000000000000:role/"+n)
			require.NoError(t, err)
			a := s.dp.Trust(role, decision.TrustRequest{Action: "sts:AssumeRoleWithWebIdentity", Type: "Federated",
				Principals: []string{selfARN}, Context: tctx})
			if a.Outcome == decision.TrustAllowed {
				want = append(want, role.ARN)
			}
		}
		var gotARNs []string
		for _, r := range got {
			gotARNs = append(gotARNs, r.ARN)
		}
		require.ElementsMatch(t, want, gotARNs, "principal %s", pr.UserName)
		require.NotEmpty(t, want, "principal %s: the table must admit someone", pr.UserName)
	}
}

// TestConcurrentAnswersAndChanges: answers and change notifications from
// many goroutines at once stay consistent (run under -race): every picker
// answer for a member of team is the team role, whatever was dropped.
func TestConcurrentAnswersAndChanges(t *testing.T) {
	s := newStack(t)
	s.role("team", trustForGroup("team"), allowTeam)
	s.role("other", trustForGroup("other"), allowAll)
	alice := s.user("alice", "team")
	ctx := context.Background()
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			for j := range 50 {
				if (i+j)%5 == 0 {
					s.dp.Changed()
				}
				roles, err := s.dp.Pickable(ctx, decision.PickRequest{Principal: decision.Principal{UserID: alice.ID, UserName: "alice", Groups: []string{"team"}}})
				if err == nil && (len(roles) != 1 || roles[0].ARN != teamRole) {
					err = fmt.Errorf("picker answered %d roles", len(roles))
				}
				if err == nil {
					var ok bool
					ok, err = s.dp.Entitled(ctx, alice.ID, teamRole)
					if err == nil && !ok {
						err = fmt.Errorf("alice not entitled to the team role")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

// TestSecondReplicaFollowsTheChangeMark (issue 12 §1: a change applies
// within 1 s on the other replicas, and a replica re-reads nothing while
// nothing changed): replica B keeps its trust index past the TTL while the
// shared change mark stands (no ListRoles), and rebuilds it on its first
// answer after the TTL once replica A has published a change.
func TestSecondReplicaFollowsTheChangeMark(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	mark := decision.StoreChangeMark{Store: s.st.Store}
	b, err := decision.New(decision.Options{Store: s.st, AccountID: account, SelfIssuer: selfIssuer,
		Audience: "gatehouse", Clock: s.clock, Mark: mark})
	require.NoError(t, err)
	r := s.role("team", trustForGroup("team"), allowTeam)
	pr := decision.Principal{UserID: "u1", UserName: "alice", Groups: []string{"team"}}
	pick := func() int {
		roles, err := b.Pickable(ctx, decision.PickRequest{Principal: pr})
		require.NoError(t, err)
		return len(roles)
	}
	require.Equal(t, 1, pick())
	s.st.roles.Store(0)
	for range 3 {
		s.advance(decision.DefaultTTL)
		require.Equal(t, 1, pick())
	}
	require.Zero(t, s.st.roles.Load(), "an unchanged mark must spare the role list")

	// Replica A changes the trust policy and publishes it.
	r.TrustPolicy = trustForGroup("finance")
	require.NoError(t, s.st.UpdateRole(ctx, r))
	require.NoError(t, mark.Bump(ctx))
	require.Equal(t, 1, pick(), "within the TTL the old answer may stand")
	s.advance(decision.DefaultTTL)
	require.Equal(t, 0, pick(), "past the TTL the published change applies")

	// A write that moved no mark still applies within MaxAge.
	r.TrustPolicy = trustForGroup("team")
	require.NoError(t, s.st.UpdateRole(ctx, r))
	s.advance(decision.DefaultTTL)
	require.Equal(t, 0, pick())
	s.advance(decision.MaxAge)
	require.Equal(t, 1, pick())
}
