package clientip

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestClient covers issue 11 finding 8 at the unit level: forwarding
// headers are believed only from trusted proxies, and then only up to the
// right-most untrusted hop.
func TestClient(t *testing.T) {
	cases := []struct {
		name    string
		trusted string
		header  string // resolver header setting
		peer    string
		xff     []string
		fwd     []string
		want    string
	}{
		{name: "no proxies: header ignored", peer: "203.0.113.9:5000", xff: []string{"10.1.2.3"}, want: "203.0.113.9"},
		{name: "untrusted peer spoofs XFF", trusted: "10.0.0.0/8", peer: "203.0.113.9:5000", xff: []string{"10.1.2.3"}, want: "203.0.113.9"},
		{name: "trusted proxy, one hop", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "client prepends a spoofed hop", trusted: "10.0.0.0/8", peer: "10.0.0.2:443",
			xff: []string{"10.9.9.9, 198.51.100.7"}, want: "198.51.100.7"},
		{name: "two trusted proxies", trusted: "10.0.0.0/8,192.0.2.5", peer: "10.0.0.2:443",
			xff: []string{"198.51.100.7, 192.0.2.5"}, want: "198.51.100.7"},
		{name: "hops over several header lines", trusted: "10.0.0.0/8", peer: "10.0.0.2:443",
			xff: []string{"1.1.1.1", "10.0.0.3", "10.0.0.4"}, want: "1.1.1.1"},
		{name: "only trusted hops: left-most", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", xff: []string{"10.0.0.3"}, want: "10.0.0.3"},
		{name: "trusted proxy, no header", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", want: "10.0.0.2"},
		{name: "garbage hop is unknown", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", xff: []string{"1.1.1.1, nonsense"}, want: "0.0.0.0"},
		{name: "hop with port", trusted: "127.0.0.1", peer: "127.0.0.1:1", xff: []string{"198.51.100.7:8443"}, want: "198.51.100.7"},
		{name: "IPv6 peer and hop", trusted: "2001:db8::/32", peer: "[2001:db8::1]:443", xff: []string{"2001:db9::7"}, want: "2001:db9::7"},
		{name: "XFF ignored when Forwarded is configured", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:443",
			xff: []string{"198.51.100.7"}, want: "10.0.0.2"},
		{name: "Forwarded is ignored when XFF is configured", trusted: "10.0.0.0/8", peer: "10.0.0.2:443",
			fwd: []string{"for=10.5.5.5"}, xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
		{name: "Forwarded for=, quoted IPv6 with port", trusted: "10.0.0.0/8", header: "forwarded", peer: "10.0.0.2:443",
			fwd: []string{`for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded obfuscated is unknown", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:443",
			fwd: []string{"for=_hidden"}, want: "0.0.0.0"},
		{name: "IPv4-mapped peer is trusted", trusted: "10.0.0.0/8", peer: "[::ffff:10.0.0.2]:443", xff: []string{"198.51.100.7"}, want: "198.51.100.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.trusted, tc.header)
			require.NoError(t, err)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				req.Header.Add("Forwarded", v)
			}
			require.Equal(t, tc.want, r.Client(req).String())
		})
	}
}

// TestClientLongChainIsUnknown: a chain longer than maxHops is not walked.
func TestClientLongChainIsUnknown(t *testing.T) {
	r, err := New("10.0.0.0/8", "")
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:1"
	for range maxHops + 1 {
		req.Header.Add("X-Forwarded-For", "10.0.0.3")
	}
	require.Equal(t, Unknown, r.Client(req))
}

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tc := range []struct{ trusted, header string }{
		{"10.0.0.0/33", ""}, {"not-an-ip", ""}, {"10.0.0.0/8", "X-Real-IP"},
	} {
		_, err := New(tc.trusted, tc.header)
		require.Error(t, err, "%+v", tc)
	}
}

// TestHandlerRewritesRemoteAddr: downstream handlers see the resolved client.
func TestHandlerRewritesRemoteAddr(t *testing.T) {
	r, err := New("127.0.0.0/8", "")
	require.NoError(t, err)
	var got string
	h := r.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = req.RemoteAddr }))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:4000"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.Equal(t, "198.51.100.7:0", got)

	req.RemoteAddr = "203.0.113.1:4000"
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.Equal(t, "203.0.113.1:4000", got, "an untrusted peer keeps its own address")
}

// TestSecure is the X-Forwarded-Proto / Forwarded proto= follow-up of issue
// 11 finding 8 at the unit level: a trusted proxy's word on the scheme is
// believed (and only then), a client's own "https" never outweighs an
// "http" its proxy added, and a proxy that says nothing leaves the answer
// to our own connection.
func TestSecure(t *testing.T) {
	cases := []struct {
		name          string
		trusted       string
		header        string // resolver header setting
		peer          string
		tls           bool // the connection to us is TLS
		xff, xfp, fwd []string
		want          bool
	}{
		{name: "no proxies: header ignored", peer: "203.0.113.9:5000", xfp: []string{"https"}},
		{name: "no proxies: direct TLS", peer: "203.0.113.9:5000", tls: true, want: true},
		{name: "untrusted peer claims https", trusted: "10.0.0.0/8", peer: "203.0.113.9:5000", xfp: []string{"https"}},
		{name: "untrusted peer over TLS claims http", trusted: "10.0.0.0/8", peer: "203.0.113.9:5000", tls: true,
			xfp: []string{"http"}, want: true},
		{name: "trusted proxy says https", trusted: "10.0.0.0/8", peer: "10.0.0.2:80", xff: []string{"198.51.100.7"},
			xfp: []string{"HTTPS"}, want: true},
		{name: "trusted proxy over TLS says http", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", tls: true,
			xff: []string{"198.51.100.7"}, xfp: []string{"http"}},
		{name: "client's https before the proxy's http", trusted: "10.0.0.0/8", peer: "10.0.0.2:80",
			xff: []string{"198.51.100.7"}, xfp: []string{"https, http"}},
		{name: "values over several lines", trusted: "10.0.0.0/8", peer: "10.0.0.2:80", xfp: []string{"https", "https"}, want: true},
		{name: "garbage proto", trusted: "10.0.0.0/8", peer: "10.0.0.2:80", xfp: []string{"wss"}},
		{name: "proxy says nothing: our connection", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", tls: true,
			xff: []string{"198.51.100.7"}, want: true},
		{name: "unknown client is never secure", trusted: "10.0.0.0/8", peer: "10.0.0.2:443", tls: true,
			xff: []string{"nonsense"}, xfp: []string{"https"}},
		{name: "X-Forwarded-Proto ignored with Forwarded", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:80",
			fwd: []string{"for=198.51.100.7"}, xfp: []string{"https"}},
		{name: "Forwarded proto=https", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:80",
			fwd: []string{`for=198.51.100.7;proto=https`}, want: true},
		{name: "Forwarded: spoofed element left of the client is not read", trusted: "10.0.0.0/8", header: "Forwarded",
			peer: "10.0.0.2:80", fwd: []string{`for=10.9.9.9;proto=https, for=198.51.100.7;proto=http`}},
		{name: "Forwarded: every walked hop https", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:80",
			fwd: []string{`for=198.51.100.7;proto=https, for=10.0.0.3;proto="https"`}, want: true},
		{name: "Forwarded: an inner hop http", trusted: "10.0.0.0/8", header: "Forwarded", peer: "10.0.0.2:80",
			fwd: []string{`for=198.51.100.7;proto=https, for=10.0.0.3;proto=http`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.trusted, tc.header)
			require.NoError(t, err)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tc.peer
			if !tc.tls {
				req.TLS = nil
			} else if req.TLS == nil {
				req.TLS = &tls.ConnectionState{}
			}
			for k, vs := range map[string][]string{"X-Forwarded-For": tc.xff, "X-Forwarded-Proto": tc.xfp, "Forwarded": tc.fwd} {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			require.Equal(t, tc.want, r.Secure(req))
			var got bool
			r.Handler(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
				got = SecureTransport(req)
			})).ServeHTTP(httptest.NewRecorder(), req)
			require.Equal(t, tc.want, got, "SecureTransport after Handler")
		})
	}
}
