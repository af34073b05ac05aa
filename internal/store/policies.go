package store

import (
	"context"
	"time"
)

// DefaultPolicyPath is the path of a managed policy created without one.
const DefaultPolicyPath = "/"

// ManagedPolicy is a customer-managed IAM policy: a standalone, named policy
// document that STS callers name by ARN in the PolicyArns session-policy
// parameter. Name is unique case-insensitively (FoldName); Document is the
// JSON policy text, kept as given.
type ManagedPolicy struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Path        string    `json:"path"`
	Description string    `json:"description,omitempty"`
	Document    string    `json:"document"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// ARN returns arn:aws:iam::<account>:policy<path><name>.
func (p *ManagedPolicy) ARN(accountID string) string {
	path := p.Path
	if path == "" {
		path = DefaultPolicyPath
	}
	return "arn:aws:iam::" + accountID + ":policy" + path + p.Name
}

// ManagedPolicyStore persists managed policies. It is a separate interface
// from Store so that backends can grow it independently; both concrete
// stores (sqlite, postgres) implement it, and storetest.RunManagedPolicies
// is its conformance suite.
//
// The rules of Store apply: Create fills ID (if empty), Revision (1),
// CreatedAt and UpdatedAt; a taken ID or name (case-insensitively) yields
// ErrAlreadyExists; an empty Name or Document yields ErrInvalid; an empty
// Path means DefaultPolicyPath; Get, Update and Delete of an unknown id
// yield ErrNotFound; Update replaces every field but ID and CreatedAt if
// Revision is current (else ErrConflict, nothing changed) and stores
// Revision+1. The store checks no policy syntax.
type ManagedPolicyStore interface {
	CreateManagedPolicy(ctx context.Context, p *ManagedPolicy) error
	GetManagedPolicy(ctx context.Context, id string) (*ManagedPolicy, error)
	// GetManagedPolicyByName matches Name case-insensitively.
	GetManagedPolicyByName(ctx context.Context, name string) (*ManagedPolicy, error)
	// ListManagedPolicies returns every managed policy ordered by CreatedAt then ID.
	ListManagedPolicies(ctx context.Context) ([]*ManagedPolicy, error)
	UpdateManagedPolicy(ctx context.Context, p *ManagedPolicy) error
	DeleteManagedPolicy(ctx context.Context, id string) error
}
