package store

import (
	"context"
	"time"
)

// Mount binds a bucket prefix of the S3 gateway to an IAM role (the seed's
// bucket mounts with fs.s3a.stsAssumeRole.arn): a request for a key under
// Prefix in Bucket is authorized as RoleARN, if the caller is entitled to
// that role (docs/design/0012-mounts.md). (Bucket, Prefix) is unique.
type Mount struct {
	ID          string    `json:"id"`
	Bucket      string    `json:"bucket"`
	Prefix      string    `json:"prefix"` // non-empty, ends with "/"
	RoleARN     string    `json:"roleArn"`
	Description string    `json:"description,omitempty"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// MountStore persists S3 gateway mounts. Like ManagedPolicyStore it is a
// separate interface from Store; both concrete stores (sqlite, postgres)
// implement it, and storetest.RunMounts is its conformance suite.
//
// The rules of Store apply: Create fills ID (if empty), Revision (1),
// CreatedAt and UpdatedAt; a taken ID or (Bucket, Prefix) pair yields
// ErrAlreadyExists; an empty Bucket or RoleARN, or a Prefix that is empty
// or does not end with "/", yields ErrInvalid; Get, Update and Delete of an
// unknown id yield ErrNotFound; Update replaces every field but ID and
// CreatedAt if Revision is current (else ErrConflict, nothing changed) and
// stores Revision+1. The store checks neither S3 naming rules nor that the
// role exists; the API does.
type MountStore interface {
	CreateMount(ctx context.Context, m *Mount) error
	GetMount(ctx context.Context, id string) (*Mount, error)
	// ListMounts returns every mount ordered by Bucket, then Prefix, then ID
	// (byte order).
	ListMounts(ctx context.Context) ([]*Mount, error)
	UpdateMount(ctx context.Context, m *Mount) error
	DeleteMount(ctx context.Context, id string) error
	// MountsVersion returns a counter that every mount write raises in the
	// same transaction, on every replica sharing the store. Reading it
	// costs one indexed row, so a replica polls it and reloads the mounts
	// only when it moved. Equal values mean no mount changed in between.
	MountsVersion(ctx context.Context) (int64, error)
}
