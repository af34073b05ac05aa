package audit

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "aws-cli/2", 256, "aws-cli/2"},
		{"exact", "abcd", 4, "abcd"},
		{"cut with ellipsis", "abcdefgh", 6, "abc…"},
		{"cut at a rune boundary", "ééééé", 8, "éé…"},
		{"invalid utf-8 replaced", "a\xffb", 16, "a\uFFFDb"},
		{"tiny limit", "abcdef", 2, "ab"},
		{"zero", "abc", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Clip(tc.in, tc.n)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), tc.n)
			require.True(t, utf8.ValidString(got))
		})
	}
	long := strings.Repeat("x", 60<<10)
	require.Len(t, Clip(long, MaxUserAgent), MaxUserAgent)
}
