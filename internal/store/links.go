package store

import (
	"context"
	"fmt"
	"time"
)

// Values of Binding.Unlinked: what a sign-in by a federated identity that
// is linked to no directory user becomes.
const (
	// UnlinkedRefuse refuses the sign-in (the default).
	UnlinkedRefuse = "refuse"
	// UnlinkedFederated lets it through STS as a federated session of its
	// own: a principal id derived from provider and subject, the IdP's
	// claims, and no directory user's groups, attributes or tokens.
	UnlinkedFederated = "federated"
)

// Values of Binding.SCIMSubject: the SCIM attribute that carries the IdP's
// subject (SAML NameID or OIDC sub) when the IdP provisions users.
const (
	SCIMSubjectUserName   = "userName"
	SCIMSubjectExternalID = "externalId"
)

// Binding is a provider's rule for binding its identities to directory
// users (docs/design/0014-identity-binding.md). The zero value is the
// strictest rule: only explicit links bind, and unlinked identities are
// refused.
type Binding struct {
	// LinkByUserName lets a first sign-in link the subject to the active
	// directory user (never a service principal) whose UserName equals the
	// IdP's user name claim. Opt in only for an IdP whose user names are
	// assigned by the organization, not chosen by users.
	LinkByUserName bool `json:"linkByUserName,omitempty"`
	// TrustEmail lets a first sign-in link the subject to the one active
	// directory user with that e-mail address, and only when the IdP says
	// the address is verified (OIDC email_verified = true).
	TrustEmail bool `json:"trustEmail,omitempty"`
	// Unlinked is UnlinkedRefuse (also when empty) or UnlinkedFederated.
	Unlinked string `json:"unlinked,omitempty"`
	// SCIMSubject names the SCIM attribute that carries this IdP's subject
	// (SCIMSubjectUserName, SCIMSubjectExternalID), or is empty: then SCIM
	// provisioning makes no links for this provider.
	SCIMSubject string `json:"scimSubject,omitempty"`
}

// Link sources: who made a FederatedLink.
const (
	LinkSourceAdmin  = "admin"
	LinkSourceSCIM   = "scim"
	LinkSourceSignIn = "sign-in"
)

// FederatedLink binds the identity Subject of the SAML or OIDC provider
// ProviderID (a provider's ID, not its name) to the directory user UserID.
// (ProviderID, Subject) is unique, and so is (ProviderID, UserID): a user
// has at most one identity per provider. Source is one of the LinkSource*
// values.
type FederatedLink struct {
	ProviderID string    `json:"providerId"`
	Subject    string    `json:"subject"`
	UserID     string    `json:"userId"`
	Source     string    `json:"source"`
	CreatedAt  time.Time `json:"createdAt"`
}

// LinkStore persists federated links. Like MountStore it is a separate
// interface from Store; both concrete stores implement it, and
// storetest.RunLinks is its conformance suite.
//
// CreateFederatedLink fills CreatedAt; links are never updated in place, so
// a rebinding is an explicit delete then create. A taken (ProviderID,
// Subject) or (ProviderID, UserID) yields ErrAlreadyExists; an empty field
// or an unknown UserID yields ErrInvalid. Deleting a user deletes its links.
// Get and Delete of an unknown pair yield ErrNotFound.
type LinkStore interface {
	CreateFederatedLink(ctx context.Context, l *FederatedLink) error
	GetFederatedLink(ctx context.Context, providerID, subject string) (*FederatedLink, error)
	// ListFederatedLinks returns the links of providerID, or every link
	// when providerID is empty, ordered by ProviderID then Subject (bytes).
	ListFederatedLinks(ctx context.Context, providerID string) ([]*FederatedLink, error)
	// LinksOfUser returns the user's links ordered by ProviderID (bytes).
	LinksOfUser(ctx context.Context, userID string) ([]*FederatedLink, error)
	DeleteFederatedLink(ctx context.Context, providerID, subject string) error
}

// Check reports ErrInvalid when Unlinked or SCIMSubject holds a value other
// than those defined above.
func (b Binding) Check() error {
	switch b.Unlinked {
	case "", UnlinkedRefuse, UnlinkedFederated:
	default:
		return fmt.Errorf("%w: binding.unlinked must be %q or %q, not %q", ErrInvalid, UnlinkedRefuse, UnlinkedFederated, b.Unlinked)
	}
	switch b.SCIMSubject {
	case "", SCIMSubjectUserName, SCIMSubjectExternalID:
	default:
		return fmt.Errorf("%w: binding.scimSubject must be %q, %q or empty, not %q", ErrInvalid, SCIMSubjectUserName, SCIMSubjectExternalID, b.SCIMSubject)
	}
	return nil
}

// RefusesUnlinked reports whether an unlinked identity is refused.
func (b Binding) RefusesUnlinked() bool { return b.Unlinked != UnlinkedFederated }
