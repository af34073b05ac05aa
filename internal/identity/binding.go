package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// FederatedPrefix starts the principal id of an unlinked federated
// session (FederatedPrincipalID). Directory user ids never start with it.
const FederatedPrefix = "fed-"

// federatedIDRE matches the names FederatedPrincipalID makes. A directory
// user with such a name is never bound, so no person can share a
// federated session's ${aws:username}.
var federatedIDRE = regexp.MustCompile(`^fed-[0-9a-f]{32}$`)

// FederatedPrincipalID is the stable principal id of the identity subject
// of the provider providerARN when it is linked to no directory user. It is
// also that session's aws:username, so ${aws:username} in a policy names a
// prefix of that identity alone, never a directory user's.
func FederatedPrincipalID(providerARN, subject string) string {
	sum := sha256.Sum256([]byte(providerARN + "\n" + subject))
	return FederatedPrefix + hex.EncodeToString(sum[:16])
}

// How a Binding was made.
const (
	ViaSelf     = "self"      // a token of gatehouse's own issuer: sub is the directory user id
	ViaLink     = "link"      // an existing federated link
	ViaUserName = "user-name" // first sign-in, the provider's user-name rule
	ViaEmail    = "email"     // first sign-in, the provider's verified-email rule
	ViaSCIM     = "scim"      // first sign-in, the SCIM attribute that carries the subject
	ViaUnlinked = "unlinked"  // a federated session of its own
)

// FederatedIdentity is what a verified SAML assertion or ID token says
// about its subject, with the provider that vouched for it. Build it with
// Binder.SAMLIdentity or Binder.OIDCIdentity.
type FederatedIdentity struct {
	Method      string // "saml" or "oidc", for audit
	ProviderID  string
	ProviderARN string
	Binding     store.Binding
	// Self marks a token of gatehouse's own issuer, whose Subject is the
	// directory user id it was minted for.
	Self          bool
	Subject       string // SAML NameID, OIDC sub
	UserName      string // the IdP's user-name claim; only the LinkByUserName rule reads it
	Email         string
	EmailVerified bool
}

// Binding is the principal a federated identity signs in as.
type Binding struct {
	// User is the directory user, or nil for an unlinked federated session.
	User *store.User
	// PrincipalID is User.ID, or FederatedPrincipalID for an unlinked one.
	PrincipalID string
	// UserName becomes aws:username: User.UserName, or PrincipalID.
	UserName string
	// Via is one of the Via* values.
	Via string
}

// BindError is a refused federated sign-in. Reason is a stable code for
// logs and audit; Cause and Fix are full sentences for the person signing
// in. Front ends answer it as an access denial in their own error model.
type BindError struct {
	Reason, Cause, Fix string
}

func (e *BindError) Error() string { return "identity: federated sign-in refused: " + e.Reason }

// BinderOptions configure a Binder.
type BinderOptions struct {
	Store store.Store
	// Links is the link table; nil means Store, which must then implement
	// store.LinkStore.
	Links store.LinkStore
	// Audit records links made at first sign-in, before they are stored.
	Audit     audit.Emitter
	AccountID string
	// SelfIssuer is gatehouse's own OIDC issuer URL (api.public_url), whose
	// tokens carry the directory user id as sub; empty when there is none.
	SelfIssuer string
	// Now is the clock that stamps audit events; nil means time.Now.
	Now func() time.Time
}

// Binder binds federated identities to directory users by (provider,
// subject), never by name alone (docs/design/0014-identity-binding.md).
// Every federated path uses it: the web SAML ACS and OIDC callback, and
// STS AssumeRoleWithSAML and AssumeRoleWithWebIdentity. It is safe for
// concurrent use.
type Binder struct {
	o     BinderOptions
	links store.LinkStore
}

// NewBinder returns a Binder, or an error when no link table is available.
func NewBinder(o BinderOptions) (*Binder, error) {
	links := o.Links
	if links == nil {
		l, ok := o.Store.(store.LinkStore)
		if !ok {
			return nil, errors.New("identity: binder: the store keeps no federated links")
		}
		links = l
	}
	if o.Audit == nil {
		return nil, errors.New("identity: binder: an audit emitter is required")
	}
	o.SelfIssuer = strings.TrimRight(o.SelfIssuer, "/")
	return &Binder{o: o, links: links}, nil
}

// Links returns the link table the binder reads.
func (b *Binder) Links() store.LinkStore { return b.links }

// SAMLIdentity describes the subject of an assertion that p issued.
func (b *Binder) SAMLIdentity(p *store.SAMLProvider, nameID string) FederatedIdentity {
	return FederatedIdentity{Method: "saml", ProviderID: p.ID, ProviderARN: p.ARN(b.o.AccountID), Binding: p.Binding,
		Subject: nameID, UserName: nameID}
}

// OIDCIdentity describes the subject of a verified ID token of p.
func (b *Binder) OIDCIdentity(p *store.OIDCProvider, id *oidc.Identity) FederatedIdentity {
	return FederatedIdentity{Method: "oidc", ProviderID: p.ID, ProviderARN: p.ARN(b.o.AccountID), Binding: p.Binding,
		Self:    b.o.SelfIssuer != "" && strings.TrimRight(p.IssuerURL, "/") == b.o.SelfIssuer,
		Subject: id.Subject, UserName: id.Username, Email: id.Email, EmailVerified: id.EmailVerified}
}

// Resolve binds id: a token of gatehouse's own issuer to the user whose id
// is its subject; any other identity to the user its (provider, subject)
// link names; failing that, on first sign-in, to the user the provider's
// rule matches (the link is audited, then stored); failing that, to a
// federated session of its own or a refusal, as the provider's rule says.
// A disabled user, or a service principal, is never bound. Refusals are
// *BindError; other errors are store or audit failures (fail closed).
func (b *Binder) Resolve(ctx context.Context, id FederatedIdentity, meta LoginMeta) (*Binding, error) {
	if id.Subject == "" {
		return nil, &BindError{Reason: "no-subject", Cause: "The identity provider named no subject.",
			Fix: "configure the IdP to send a NameID (SAML) or sub claim (OIDC)."}
	}
	if id.Self {
		return b.self(ctx, id.Subject)
	}
	l, err := b.links.GetFederatedLink(ctx, id.ProviderID, id.Subject)
	if err == nil {
		u, err := b.o.Store.GetUser(ctx, l.UserID)
		if err != nil {
			return nil, fmt.Errorf("identity: bind: linked user: %w", err)
		}
		return bound(u, ViaLink, false)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("identity: bind: %w", err)
	}
	if bd, err := b.firstSignIn(ctx, id, meta); bd != nil || err != nil {
		return bd, err
	}
	if id.Binding.RefusesUnlinked() {
		return nil, &BindError{Reason: "unlinked",
			Cause: "Your identity at this identity provider is not linked to a gatehouse user.",
			Fix:   "ask a gatehouse administrator to link it ('gatehouse admin links create'), or to provision you through SCIM."}
	}
	pid := FederatedPrincipalID(id.ProviderARN, id.Subject)
	return &Binding{PrincipalID: pid, UserName: pid, Via: ViaUnlinked}, nil
}

// self binds a token of gatehouse's own issuer to the user whose id is its
// subject.
func (b *Binder) self(ctx context.Context, userID string) (*Binding, error) {
	u, err := b.o.Store.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &BindError{Reason: "unknown-user", Cause: "The gatehouse token names a user who no longer exists.",
			Fix: "sign in to gatehouse again."}
	}
	if err != nil {
		return nil, fmt.Errorf("identity: bind: %w", err)
	}
	return bound(u, ViaSelf, true)
}

// firstSignIn binds an unlinked identity to the user the provider's rule
// matches and records the link; it returns nil, nil when the rule matches
// nobody.
func (b *Binder) firstSignIn(ctx context.Context, id FederatedIdentity, meta LoginMeta) (*Binding, error) {
	u, via, err := b.byRule(ctx, id)
	if err != nil || u == nil {
		return nil, err
	}
	bd, err := bound(u, via, false)
	if err == nil {
		err = b.link(ctx, id, u, via, meta)
	}
	if err != nil {
		return nil, err
	}
	return bd, nil
}

// bound checks that u may be signed in as: an active person (or, for the
// gatehouse issuer only, an active service principal) whose name is a valid
// aws:username.
func bound(u *store.User, via string, self bool) (*Binding, error) {
	switch {
	case !u.Active:
		return nil, &BindError{Reason: "user-disabled", Cause: "Your gatehouse user is disabled.",
			Fix: "ask a gatehouse administrator to re-enable the user (SCIM active=true)."}
	case u.Kind == store.KindService && !self:
		return nil, &BindError{Reason: "service-principal", Cause: "A federated identity cannot sign in as a service principal.",
			Fix: "link the identity to a person's gatehouse user."}
	}
	if federatedIDRE.MatchString(u.UserName) {
		return nil, &BindError{Reason: "reserved-user-name", Cause: "The gatehouse user name has the form of a federated session's name.",
			Fix: "ask a gatehouse administrator to rename the user."}
	}
	if err := awsname.UserName(u.UserName); err != nil {
		return nil, &BindError{Reason: "bad-user-name", Cause: "The gatehouse user name cannot be used in policies: " + err.Error() + ".",
			Fix: "ask a gatehouse administrator to rename the user."}
	}
	return &Binding{User: u, PrincipalID: u.ID, UserName: u.UserName, Via: via}, nil
}

// byRule finds the user the provider's first-sign-in rule matches, or nil:
// first the SCIM attribute that carries the subject, then the user name,
// then the verified e-mail address. Service principals never match; a
// disabled match is a refusal, since the rule says the identity is that
// user.
func (b *Binder) byRule(ctx context.Context, id FederatedIdentity) (*store.User, string, error) {
	if attr := id.Binding.SCIMSubject; attr != "" {
		u, err := b.bySCIMSubject(ctx, attr, id.Subject)
		if err != nil || u != nil {
			return u, ViaSCIM, err
		}
	}
	if id.Binding.LinkByUserName && id.UserName != "" {
		u, err := b.o.Store.GetUserByName(ctx, id.UserName)
		switch {
		case err == nil && u.Kind != store.KindService:
			return u, ViaUserName, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, "", fmt.Errorf("identity: bind: %w", err)
		}
	}
	if id.Binding.TrustEmail && id.EmailVerified && id.Email != "" {
		u, err := b.byEmail(ctx, id.Email)
		if err != nil || u != nil {
			return u, ViaEmail, err
		}
	}
	return nil, "", nil
}

// bySCIMSubject returns the one person whose SCIM attribute attr
// (userName or externalId) equals subject exactly, or nil. This is how a
// link made by SCIM provisioning takes effect: the IdP provisions the user
// with its subject in attr, and the first sign-in records the link.
func (b *Binder) bySCIMSubject(ctx context.Context, attr, subject string) (*store.User, error) {
	users, err := b.o.Store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: bind: %w", err)
	}
	return onePerson(users, func(u *store.User) bool {
		if attr == store.SCIMSubjectUserName {
			return u.UserName == subject
		}
		return u.ExternalID != "" && u.ExternalID == subject
	}), nil
}

// onePerson returns the one person (not service principal) in users that
// match selects, or nil when none or several do.
func onePerson(users []*store.User, match func(*store.User) bool) *store.User {
	var found *store.User
	for _, u := range users {
		if u.Kind == store.KindService || !match(u) {
			continue
		}
		if found != nil {
			return nil // ambiguous: bind nobody
		}
		found = u
	}
	return found
}

// byEmail returns the one person whose e-mail addresses include email
// (case-insensitively), or nil when none or several do.
func (b *Binder) byEmail(ctx context.Context, email string) (*store.User, error) {
	users, err := b.o.Store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: bind: %w", err)
	}
	return onePerson(users, func(u *store.User) bool { return hasEmail(u, email) }), nil
}

func hasEmail(u *store.User, email string) bool {
	for _, e := range u.Emails {
		if strings.EqualFold(e.Value, email) {
			return true
		}
	}
	return false
}

// link records, then stores, the link of id to u made at first sign-in.
// A user already linked to another subject of the provider is never
// rebound silently: that is a refusal.
func (b *Binder) link(ctx context.Context, id FederatedIdentity, u *store.User, via string, meta LoginMeta) error {
	conflict := &BindError{Reason: "link-conflict",
		Cause: "The gatehouse user this identity matches is already linked to another identity of this provider.",
		Fix:   "ask a gatehouse administrator to review the user's federated links ('gatehouse admin links list')."}
	have, err := b.links.LinksOfUser(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("identity: bind: %w", err)
	}
	for _, l := range have {
		if l.ProviderID == id.ProviderID {
			return conflict
		}
	}
	l := &store.FederatedLink{ProviderID: id.ProviderID, Subject: id.Subject, UserID: u.ID, Source: store.LinkSourceSignIn}
	if via == ViaSCIM {
		l.Source = store.LinkSourceSCIM
	}
	ev := meta.AuditEvent(ctx, b.now, audit.CodeLinkCreated, "identity.link.create").Allow().
		Actor(audit.Actor{UserID: u.ID, User: u.UserName, AuthMethod: id.Method}).
		Resource(LinkResource(l, u.UserName)).Details(LinkDetails(l, id.ProviderARN)).Detail("rule", via)
	if err := b.o.Audit.Emit(ctx, ev.Event()); err != nil {
		return fmt.Errorf("identity: bind: audit link: %w", err)
	}
	err = b.links.CreateFederatedLink(ctx, l)
	if errors.Is(err, store.ErrAlreadyExists) {
		// A concurrent sign-in of the same identity may have won the race.
		got, gerr := b.links.GetFederatedLink(ctx, id.ProviderID, id.Subject)
		if gerr == nil && got.UserID == u.ID {
			return nil
		}
		return conflict
	}
	if err != nil {
		return fmt.Errorf("identity: bind: %w", err)
	}
	return nil
}

// LinkResource is the audit resource of link l to the user userName.
func LinkResource(l *store.FederatedLink, userName string) audit.Resource {
	return audit.Resource{Type: "federated-link", ID: l.UserID, Name: userName}
}

// LinkDetails are the audit details of creating or deleting link l of the
// provider providerARN: the provider, the subject (clipped) and the link's
// source.
func LinkDetails(l *store.FederatedLink, providerARN string) map[string]any {
	return map[string]any{"provider": providerARN, "providerId": l.ProviderID,
		"subject": audit.Clip(l.Subject, 256), "source": l.Source}
}

// now is the binder's clock.
func (b *Binder) now() time.Time {
	if b.o.Now != nil {
		return b.o.Now()
	}
	return time.Now()
}
