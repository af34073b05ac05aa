package websso

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
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
	// purposeSAMLCLI keys the MAC of a CLI login through SAML.
	purposeSAMLCLI = "gatehouse/websso/saml-cli/v1"
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

// A CLI login through a SAML IdP cannot send its sealed relay as the
// RelayState: SAML bindings §3.4.3 and §3.5.3 limit RelayState to 80
// bytes, and IdPs that enforce it drop or refuse a longer one. So the login
// is split between the two values the IdP echoes. The RelayState is the
// CLI's own state (at most 80 bytes; the CLI checks it on its loopback
// callback). The AuthnRequest ID, echoed as InResponseTo, is
//
//	"_cli." + base64url( 0x01 || expiry (4 bytes, Unix s) || port (2) || PKCE challenge (32) || nonce (8) || MAC (16) )
//
// (89 characters; the nonce tells two sign-ins of one CLI apart), where MAC = HMAC-SHA256(K, body || 0 || state)[:16] and
// K = HMAC-SHA256(master key, purposeSAMLCLI). The MAC binds the state to
// the rest, so neither value can be swapped; the values are not secret
// (they came from the CLI in the /login URL). Starting still writes
// nothing, and the ID is claimed once when a response answers it.
const (
	cliAuthnPrefix  = "_cli."
	cliAuthnVersion = 0x01
	cliAuthnBodyLen = 1 + 4 + 2 + 32 + 8
	cliAuthnMACLen  = 16
	// maxRelayState is the RelayState limit of SAML bindings §3.4.3/§3.5.3.
	maxRelayState = 80
)

// errStateTooLong refuses a CLI state that cannot travel as RelayState.
var errStateTooLong = fmt.Errorf("websso: the CLI state is longer than the %d bytes a SAML RelayState may hold", maxRelayState)

// cliAuthnMAC authenticates a CLI AuthnRequest body together with state.
func (s *Service) cliAuthnMAC(body []byte, state string) []byte {
	k := hmac.New(sha256.New, s.o.MasterKey)
	k.Write([]byte(purposeSAMLCLI))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write(body)
	m.Write([]byte{0})
	m.Write([]byte(state))
	return m.Sum(nil)[:cliAuthnMACLen]
}

// newCLIAuthnRequest returns the AuthnRequest ID and the RelayState of CLI
// login p through a SAML IdP. It expires with p, and within
// authnRequestTTL. A state over maxRelayState bytes yields errStateTooLong.
func (s *Service) newCLIAuthnRequest(p *pendingCLI) (id, relayState string, err error) {
	if len(p.State) > maxRelayState {
		return "", "", errStateTooLong
	}
	ch, err := base64.RawURLEncoding.Strict().DecodeString(p.Challenge)
	if err != nil || len(ch) != 32 || p.Port < 1 || p.Port > 65535 {
		return "", "", errBadState
	}
	exp := min(p.ExpiresAt.Unix(), s.now().Add(authnRequestTTL).Unix())
	body := make([]byte, 0, cliAuthnBodyLen+cliAuthnMACLen)
	body = append(body, cliAuthnVersion)
	body = binary.BigEndian.AppendUint32(body, uint32(exp))
	body = binary.BigEndian.AppendUint16(body, uint16(p.Port))
	body = append(body, ch...)
	nonce := make([]byte, 8)
	if _, err := io.ReadFull(s.o.Rand, nonce); err != nil {
		return "", "", fmt.Errorf("websso: randomness: %w", err)
	}
	body = append(body, nonce...)
	body = append(body, s.cliAuthnMAC(body, p.State)...)
	return cliAuthnPrefix + base64.RawURLEncoding.EncodeToString(body), p.State, nil
}

// answerCLIAuthnRequest opens the CLI AuthnRequest id that a response
// answers, with the RelayState that came back, and claims it. It reports
// the CLI login and true only if this SP sent that request with that
// state, recently, and no other response answered it, on any replica.
func (s *Service) answerCLIAuthnRequest(ctx context.Context, id, relayState string) (*pendingCLI, bool, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(id, cliAuthnPrefix))
	if err != nil || !strings.HasPrefix(id, cliAuthnPrefix) || len(raw) != cliAuthnBodyLen+cliAuthnMACLen ||
		raw[0] != cliAuthnVersion || len(relayState) > maxRelayState {
		return nil, false, nil
	}
	body, mac := raw[:cliAuthnBodyLen], raw[cliAuthnBodyLen:]
	if !hmac.Equal(mac, s.cliAuthnMAC(body, relayState)) {
		return nil, false, nil
	}
	exp := time.Unix(int64(binary.BigEndian.Uint32(body[1:5])), 0).UTC()
	if !s.now().Before(exp) {
		return nil, false, nil
	}
	ok, err := s.claimOnce(ctx, purposeSAMLCLI, id, exp)
	if err != nil || !ok {
		return nil, false, err
	}
	return &pendingCLI{Port: int(binary.BigEndian.Uint16(body[5:7])), State: relayState,
		Challenge: base64.RawURLEncoding.EncodeToString(body[7:39]), ExpiresAt: exp}, true, nil
}

// openRelay opens a sealed CLI relay without claiming it (a SAML login
// carries it on as newCLIAuthnRequest values, claimed when answered).
func (s *Service) openRelay(relay string) (*pendingCLI, bool) {
	var p pendingCLI
	if s.openState(purposeRelay, relay, &p) != nil || !s.now().Before(p.ExpiresAt) {
		return nil, false
	}
	return &p, true
}
