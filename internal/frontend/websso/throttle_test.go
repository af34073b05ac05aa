package websso_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// TestWebSignInFormIsThrottled is issue 11 finding 6 on the sign-in page:
// password guessing through the web form of a running server is refused
// with 429, Retry-After and a page that says how long to wait, and the
// right password does not get through while the name is throttled.
func TestWebSignInFormIsThrottled(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{LoginLimits: identity.LoginLimits{
		PerUser:   identity.Rate{Burst: 2, Every: time.Hour},
		PerSource: identity.Rate{Burst: 1000, Every: time.Second},
	}})
	w.AddUser("alice", "alice-pw-123456")
	hc := &http.Client{}
	form := func(pw string) url.Values { return url.Values{"username": {"alice"}, "password": {pw}} }
	for _, pw := range []string{"guess-one-1", "guess-two-2"} {
		res, _ := postForm(t, hc, w.URL+"/login", form(pw))
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	for _, pw := range []string{"guess-three-3", "alice-pw-123456"} {
		res, body := postForm(t, hc, w.URL+"/login", form(pw))
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, body)
		require.Equal(t, "3600", res.Header.Get("Retry-After"))
		require.Contains(t, body, "Too many sign-in attempts")
		require.Contains(t, body, "3600 seconds")
	}
}
