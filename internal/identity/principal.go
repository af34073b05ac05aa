package identity

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Principal is an authenticated caller, resolved fresh on every request so
// that disabling a user or revoking a token takes effect on the next request.
type Principal struct {
	UserID     string
	UserName   string
	Kind       string   // "user" or "service"
	Groups     []string // display names, transitive
	Admin      bool     // holds the admin privilege (docs/design/0015-admin-privilege.md)
	SCIM       bool     // may call the SCIM API: holds the scim or the admin privilege
	TokenID    string   // the token or session used, if any
	AuthMethod string   // "token", "session", "password"
	// TokenExpiresAt is the expiry of the token or session used (zero:
	// none, or no token).
	TokenExpiresAt time.Time
	// RoleLimit is the role restriction of the token or session used
	// (store.Token.Roles): nil means none, and a non-nil list, even an
	// empty one, the only roles the caller may reach with it.
	RoleLimit []store.RoleGrant
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal on ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// AuditActor returns p as the actor of an audit event: the user, how they
// authenticated and the token or session they used. A nil p is an anonymous
// actor. The caller adds the source (audit.Builder.Source).
func (p *Principal) AuditActor() audit.Actor {
	if p == nil {
		return audit.Actor{}
	}
	return audit.Actor{UserID: p.UserID, User: p.UserName, AuthMethod: p.AuthMethod, SessionID: p.TokenID}
}

// InGroup reports whether p is (transitively) a member of the named group.
func (p *Principal) InGroup(name string) bool {
	for _, g := range p.Groups {
		if strings.EqualFold(g, name) {
			return true
		}
	}
	return false
}

// ErrUnauthenticated is returned when a request carries no valid credential:
// missing, malformed, unknown, expired or revoked token, or a disabled
// principal. Front ends answer 401 without saying which part was wrong.
var ErrUnauthenticated = errors.New("identity: unauthenticated")

// Authenticator resolves the caller of an HTTP request. Front ends that have
// their own error model (SCIM, S3, STS) call it directly; the REST API wraps
// it in middleware.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (*Principal, error)
}
