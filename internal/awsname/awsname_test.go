package awsname

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	long := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := []struct {
		name  string
		check func(string) error
		in    string
		ok    bool
	}{
		{"user plain", UserName, "alice", true},
		{"user email", UserName, "alice.o'neil@example.com", false},
		{"user email ok", UserName, "alice+eu@example.com", true},
		{"user slash", UserName, "alice/x", false},
		{"user star", UserName, "alice*", false},
		{"user dollar", UserName, "${aws:username}", false},
		{"user unicode", UserName, "älice", false},
		{"user space", UserName, "al ice", false},
		{"user empty", UserName, "", false},
		{"user 64", UserName, long(64), true},
		{"user 65", UserName, long(65), false},
		{"session 1", RoleSessionName, "a", false},
		{"session 2", RoleSessionName, "ab", true},
		{"session slash", RoleSessionName, "a/b", false},
		{"session 65", RoleSessionName, long(65), false},
		{"source aws", SourceIdentity, "AWS:x", false},
		{"source ok", SourceIdentity, "alice@example.com", true},
		{"role ok", RoleName, "analyst-eu", true},
		{"role colon", RoleName, "a:b", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.check(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("%q: err=%v, want ok=%v", c.in, err, c.ok)
			}
		})
	}
}

// TestSessionNameFrom: any name becomes a valid RoleSessionName and
// SourceIdentity.
func TestSessionNameFrom(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"carol/x", "carol-x"},
		{"a", "a-"},
		{"", "--"},
		{"aws:me", "aws-me"},
		{"é", "--"},
		{strings.Repeat("b", 70), strings.Repeat("b", 64)},
	} {
		got := SessionNameFrom(tt.in)
		if got != tt.want {
			t.Errorf("SessionNameFrom(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if err := RoleSessionName(got); err != nil {
			t.Errorf("SessionNameFrom(%q) = %q: %v", tt.in, got, err)
		}
		if err := SourceIdentity(got); err != nil {
			t.Errorf("SessionNameFrom(%q) = %q: %v", tt.in, got, err)
		}
	}
}
