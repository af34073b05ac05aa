package decision

import "testing"

// TestSessionRoleLimitAdmits pins the one rule for a session's role
// restriction (issue 12 §3: the decision point alone owns it; the
// credentials package only carries the list): nil admits any role, an
// empty list none, and a list only the roles it names.
func TestSessionRoleLimitAdmits(t *testing.T) {
	const a, b = "arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/B"
	cases := []struct {
		name  string
		limit []string
		role  string
		want  bool
	}{
		{"unrestricted admits any", nil, a, true},
		{"empty admits none", []string{}, a, false},
		{"listed role", []string{a}, a, true},
		{"unlisted role", []string{a}, b, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{RoleLimit: tc.limit}
			if got := s.mayActAs(tc.role); got != tc.want {
				t.Fatalf("mayActAs(%s) with %v = %v, want %v", tc.role, tc.limit, got, tc.want)
			}
		})
	}
}
