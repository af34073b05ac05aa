package requestid

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEnsureNeverAdoptsTheClientsID: whatever the client sends as
// X-Request-Id, our id is fresh; a well-formed client id is kept apart as
// the client request id, and a malformed one is dropped.
func TestEnsureNeverAdoptsTheClientsID(t *testing.T) {
	tests := []struct {
		name, sent, wantClient string
	}{
		{"none", "", ""},
		{"well-formed", "victims-request-1", "victims-request-1"},
		{"malformed", "a b\r\nX-Evil: 1", ""},
		{"too long", strings.Repeat("a", 65), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.sent != "" {
				r.Header.Set(Header, tc.sent)
			}
			r, id := Ensure(r)
			if id == "" || id == tc.sent || From(r.Context()) != id {
				t.Fatalf("our id %q (context %q) for client id %q", id, From(r.Context()), tc.sent)
			}
			if got := ClientFrom(r.Context()); got != tc.wantClient {
				t.Fatalf("client id %q, want %q", got, tc.wantClient)
			}
			again, id2 := Ensure(r)
			if id2 != id || again != r {
				t.Fatal("Ensure on a request that has an id must keep it")
			}
		})
	}
}
