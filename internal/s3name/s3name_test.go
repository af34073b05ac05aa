package s3name

import (
	"errors"
	"strings"
	"testing"
)

func TestBucket(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"demo", true}, {"a.b-c", true}, {"ab", false}, {strings.Repeat("a", 64), false},
		{"Demo", false}, {"-demo", false}, {"demo-", false}, {"de..mo", false}, {"de.-mo", false},
		{"192.168.1.1", false}, {"de_mo", false},
	} {
		err := Bucket(c.in)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidBucket)) {
			t.Errorf("Bucket(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
}

func TestKey(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"home/alice/notes.md", true}, {"", false}, {strings.Repeat("k", MaxKeyLen+1), false},
		{"/abs", false}, {"a//b", false}, {"a/../b", false}, {"a/./b", false}, {`a\b`, false},
		{"C:x", false}, {"a%2fb", false}, {"a%2E%2e", false}, {"a\x00b", false}, {"\xff", false},
		{ReservedPrefix + "-stage/x", false}, {"a/" + ReservedPrefix, false},
	} {
		err := Key(c.in)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidKey)) {
			t.Errorf("Key(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
}
