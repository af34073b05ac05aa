package audit

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawAppender is a JSONAppender that writes a fixed encoding.
type rawAppender string

func (r rawAppender) AppendJSON(dst []byte) ([]byte, error) { return append(dst, r...), nil }

// TestAppendJSONObject: Details are encoded as encoding/json encodes a map
// (keys sorted and escaped, values as json.Marshal writes them), except that
// a JSONAppender value writes itself.
func TestAppendJSONObject(t *testing.T) {
	m := map[string]any{"z": 1, "a<": "x&y\u2028", "m": []string{"p", "q"}, "n": nil, "b": true,
		"o": map[string]any{"k": 2.5}, "s": struct {
			F string `json:"f,omitempty"`
		}{}}
	want, err := json.Marshal(m)
	require.NoError(t, err)
	got, err := AppendJSONObject(nil, m)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	got, err = AppendJSONObject([]byte("x"), map[string]any{"r": rawAppender(`{"own":1}`), "a": "b"})
	require.NoError(t, err)
	require.Equal(t, `x{"a":"b","r":{"own":1}}`, string(got))

	_, err = AppendJSONObject(nil, map[string]any{"bad": func() {}})
	require.Error(t, err)
}
