package saml

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// TestCertificateValidityWithinSkew proves issue 11 finding 12: an IdP
// signing certificate minted one second ago is accepted at once, and the
// clock skew applies symmetrically to the certificate's NotBefore and
// NotAfter, as it does to the assertion's window. When a certificate is
// really outside its window, the error names the cause (not yet valid or
// expired, with the certificate's time) instead of blaming the
// certificate in general.
func TestCertificateValidityWithinSkew(t *testing.T) {
	requireXmlsec1(t)
	skew := DefaultMaxSkew
	fresh := testKey(t, "minted-one-second-ago", 2048, t0.Add(-time.Second), t0.AddDate(1, 0, 0))
	future := testKey(t, "valid-from-skew-plus-1s", 2048, t0.Add(skew+time.Second), t0.AddDate(1, 0, 0))
	nearFuture := testKey(t, "valid-from-skew-minus-1s", 2048, t0.Add(skew-time.Second), t0.AddDate(1, 0, 0))
	justExpired := testKey(t, "expired-skew-minus-1s", 2048, t0.AddDate(-1, 0, 0), t0.Add(-skew+time.Second))
	longExpired := testKey(t, "expired-skew-plus-1s", 2048, t0.AddDate(-1, 0, 0), t0.Add(-skew-time.Second))

	tests := []struct {
		name    string
		kp      *keyPair
		skew    time.Duration // SP.MaxSkew; 0 = default
		reason  string        // "" = accepted
		inCause string
	}{
		{name: "certificate minted one second ago", kp: fresh},
		{name: "certificate valid from within the skew", kp: nearFuture},
		{name: "certificate expired within the skew", kp: justExpired},
		{name: "certificate not yet valid beyond the skew", kp: future, reason: "certificate-validity",
			inCause: "not valid before " + t0.Add(skew+time.Second).Format(time.RFC3339)},
		{name: "certificate expired beyond the skew", kp: longExpired, reason: "certificate-validity",
			inCause: "expired at " + t0.Add(-skew-time.Second).Format(time.RFC3339)},
		{name: "smaller configured skew", kp: nearFuture, skew: time.Second, reason: "certificate-validity",
			inCause: "allowed clock skew 1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := defaultParams()
			doc := xmlsecSign(t, render(t, p), tc.kp, p)
			sp := newTestSP(t, t0, &IdP{EntityID: testIdPID, SigningCerts: []*x509.Certificate{tc.kp.cert}})
			sp.MaxSkew = tc.skew
			a, err := sp.Validate(b64(doc))
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if a.NameID != "alice@example.test" {
					t.Fatalf("NameID = %q", a.NameID)
				}
				return
			}
			e := wantError(t, err, CodeInvalidIdentityToken, tc.reason)
			if !strings.Contains(e.Cause, tc.inCause) {
				t.Fatalf("cause %q does not say %q", e.Cause, tc.inCause)
			}
		})
	}
}
