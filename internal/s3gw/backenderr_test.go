package s3gw

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestBackendClientErrorsPassThrough proves issue 13, "a backend's 4xx
// reaches the client as that 4xx": a request the store refuses as the
// client's fault (versitygw's KeyTooLongError for a 300-byte path segment,
// DirectoryObjectContainsData for a body under a key ending in "/") reaches
// the client with the store's code, status and message, once, instead of a
// retryable 503 that SDKs send again (boto3 five times). The failure is
// recorded with that code.
func TestBackendClientErrorsPassThrough(t *testing.T) {
	e := newEnv(t, envOptions{backend: versitygwBackendStaged(t, false)})
	c := e.creds("alice", roleARNs.admin, "")
	for _, tc := range []struct {
		key, code, msg string
	}{
		{strings.Repeat("a", 300), "KeyTooLongError", "Your key is too long."},
		{"dir/", "DirectoryObjectContainsData", "Directory object contains data payload."},
	} {
		t.Run(tc.code, func(t *testing.T) {
			resp := e.signed(t, c, "PUT", "/data/"+tc.key, nil, []byte("x"))
			body := readAll(t, resp)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
			require.Contains(t, body, "<Code>"+tc.code+"</Code>")
			require.Contains(t, body, "<Message>"+tc.msg+"</Message>")
			require.Empty(t, resp.Header.Get("Retry-After"))
			evs := e.audit.find("PutObject")
			last := evs[len(evs)-1]
			require.Equal(t, audit.CodeS3Failed, last.Code)
			require.Contains(t, last.Reason, tc.code)
		})
	}
}
