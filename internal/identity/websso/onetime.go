package websso

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// One-time sign-in state (issue 11 finding 5).
//
// The state a sign-in carries between its anonymous start and its end (a
// CLI login's loopback port, state and PKCE challenge; an SP-initiated
// SAML login's AuthnRequest; an OIDC login's PKCE verifier and nonce) is
// sealed under the master key into the value that travels with the browser:
// the CLI relay (RelayState through a SAML IdP), the AuthnRequest ID
// (echoed by the IdP as InResponseTo) and the OAuth state parameter. Starting a sign-in therefore writes nothing, so
// anonymous GETs cannot grow the store. Each value is used once: when it
// comes back it is claimed in the store with a conditional insert that
// expires when the value does (store.Claim), so the first use wins on every
// replica sharing the store and after a restart, and the sweeper deletes the
// claim afterwards. Only completed steps write, one bounded row each.

// Lifetimes of sign-in state.
const (
	// pendingTTL bounds a CLI login, from `gatehouse login` to the hand-off.
	pendingTTL = 10 * time.Minute
	// authnRequestTTL bounds how long a user may take at the SAML IdP.
	authnRequestTTL = 10 * time.Minute
	// oidcTTL bounds how long a user may take at the OIDC provider.
	oidcTTL = 10 * time.Minute
	// handoffTTL bounds the CLI's exchange of its one-time code.
	handoffTTL = 2 * time.Minute
)

// Purposes bind each sealed value to one use: a relay cannot be replayed as
// an OAuth state, nor the other way round.
const (
	purposeRelay = "gatehouse/websso/cli-relay/v1"
	purposeAuthn = "gatehouse/websso/authn-request/v1"
	purposeOIDC  = "gatehouse/websso/oidc-state/v1"
)

// errBadState reports a sealed value that does not open: forged, truncated,
// or sealed for another purpose or under another master key.
var errBadState = errors.New("websso: sign-in state does not open")

// sealState seals v (JSON) for purpose and returns it URL-safe.
func (s *Service) sealState(purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("websso: seal state: %w", err)
	}
	sealed, err := secrets.Seal(s.o.MasterKey, b, []byte(purpose))
	if err != nil {
		return "", fmt.Errorf("websso: seal state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// openState opens a value of sealState into v, or returns errBadState.
func (s *Service) openState(purpose, sealed string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return errBadState
	}
	b, err := secrets.Open(s.o.MasterKey, raw, []byte(purpose))
	if err != nil || json.Unmarshal(b, v) != nil {
		return errBadState
	}
	return nil
}

// claimOnce records the use of the sealed value of purpose until its
// expiry, and reports whether this was its first use on any replica.
func (s *Service) claimOnce(ctx context.Context, purpose, sealed string, expires time.Time) (bool, error) {
	h := sha256.Sum256([]byte(purpose + "\x00" + sealed))
	return store.Claim(ctx, s.o.Store, "websso/used/"+hex.EncodeToString(h[:]), expires)
}

// pendingCLI is a login started by `gatehouse login`: where to hand the
// session over, and the PKCE challenge the exchange must answer. It travels
// sealed as the relay.
type pendingCLI struct {
	Port      int       `json:"p"`
	State     string    `json:"s"`
	Challenge string    `json:"c"`
	ExpiresAt time.Time `json:"e"`
}

// newRelay seals a CLI login into its relay value.
func (s *Service) newRelay(p pendingCLI) (string, error) {
	return s.sealState(purposeRelay, p)
}

// takeRelay opens relay and claims it. It reports false for a relay that
// does not open, has expired or was already used; the sign-in then ends in
// the browser instead of being handed to a CLI.
func (s *Service) takeRelay(ctx context.Context, relay string) (*pendingCLI, bool, error) {
	var p pendingCLI
	if s.openState(purposeRelay, relay, &p) != nil || !s.now().Before(p.ExpiresAt) {
		return nil, false, nil
	}
	ok, err := s.claimOnce(ctx, purposeRelay, relay, p.ExpiresAt)
	if err != nil || !ok {
		return nil, false, err
	}
	return &p, true, nil
}

// authnRequest is the state of an SP-initiated SAML login, sealed into the
// AuthnRequest ID (prefixed "_": an xs:ID must not start with a digit),
// which the IdP echoes as InResponseTo (saml-profiles-2.0-os §4.1.4.3). It
// holds only the expiry (Unix seconds), so the ID stays under 100
// characters, well inside what IdPs keep.
type authnRequest struct {
	Expires int64 `json:"e"`
}

// newAuthnRequestID seals a new SP-initiated login.
func (s *Service) newAuthnRequestID() (string, error) {
	v, err := s.sealState(purposeAuthn, authnRequest{Expires: s.now().Add(authnRequestTTL).Unix()})
	if err != nil {
		return "", err
	}
	return "_" + v, nil
}

// answerAuthnRequest opens the AuthnRequest an assertion answers and
// claims it: it reports true only if this SP sent the request, recently,
// and no other response answered it, on any replica.
func (s *Service) answerAuthnRequest(ctx context.Context, inResponseTo string) (bool, error) {
	var a authnRequest
	if len(inResponseTo) < 2 || inResponseTo[0] != '_' || s.openState(purposeAuthn, inResponseTo[1:], &a) != nil {
		return false, nil
	}
	exp := time.Unix(a.Expires, 0).UTC()
	if !s.now().Before(exp) {
		return false, nil
	}
	return s.claimOnce(ctx, purposeAuthn, inResponseTo, exp)
}
