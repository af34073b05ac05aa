package authzmsg

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRoundTripAndTamper(t *testing.T) {
	c, err := New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	e := Explanation{Time: time.Unix(1700000000, 0).UTC(), Principal: "arn:aws:sts::000000000000:assumed-role/analyst/alice",
		SourceIdentity: "alice", Action: "s3:GetObject", Resource: "arn:aws:s3:::demo/hr/salaries.csv",
		Reason: "no statement allows s3:GetObject"}
	msg, err := c.Encode(e)
	require.NoError(t, err)
	require.NotContains(t, msg, "alice", "the message reveals nothing to its holder")
	got, err := c.Decode(msg)
	require.NoError(t, err)
	require.Equal(t, e, *got)

	// Any change, a foreign key, garbage or an oversized message is refused.
	b := []byte(msg)
	b[len(b)-3] ^= 1
	_, err = c.Decode(string(b))
	require.ErrorIs(t, err, ErrInvalid)
	other, err := New(bytes.Repeat([]byte{8}, 32))
	require.NoError(t, err)
	_, err = other.Decode(msg)
	require.ErrorIs(t, err, ErrInvalid)
	for _, bad := range []string{"", "ghm1.", "ghm1.!!!", "nope", strings.Repeat("a", maxMessage+1)} {
		_, err = c.Decode(bad)
		require.ErrorIs(t, err, ErrInvalid, bad)
	}
	_, err = New([]byte("short"))
	require.Error(t, err)
}

func FuzzDecode(f *testing.F) {
	// Only the one sealed explanation may ever decode (the seed is sealed
	// afresh in each fuzz worker, with its own nonce).
	c, _ := New(bytes.Repeat([]byte{7}, 32))
	sealed := Explanation{Action: "s3:GetObject", Reason: "seed"}
	msg, _ := c.Encode(sealed)
	f.Add(msg)
	f.Add("ghm1.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := c.Decode(s); err == nil && *e != sealed {
			t.Fatalf("decoded a message we never sealed: %+v", e)
		}
	})
}
