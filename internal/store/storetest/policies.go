package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// RunManagedPolicies runs the conformance suite of store.ManagedPolicyStore.
// open must return a fresh, empty store for each call and arrange for it to
// be closed and discarded with t.Cleanup.
func RunManagedPolicies(t *testing.T, open func(t *testing.T) store.ManagedPolicyStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.ManagedPolicyStore)
	}{
		{"CRUD", testManagedPolicyCRUD},
		{"Validation", testManagedPolicyValidation},
		{"RevisionConflict", testManagedPolicyRevisionConflict},
		{"ConcurrentUpdatesLoseNothing", testManagedPolicyConcurrentUpdates},
	}
	for _, tc := range tests {
		t.Run("ManagedPolicy"+tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func testManagedPolicyCRUD(t *testing.T, s store.ManagedPolicyStore) {
	before := time.Now().Add(-time.Second)
	// Documents survive byte for byte (whitespace, key order, non-ASCII).
	doc := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\", \"Sid\": \"Grüße\"}\n}"
	p := &store.ManagedPolicy{Name: "Lake-Read", Path: "/eng/data/", Description: "Read the lake", Document: doc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), p))
	_, err := uuid.Parse(p.ID)
	require.NoError(t, err, "generated id must be a uuid")
	require.Equal(t, int64(1), p.Revision)
	require.True(t, p.CreatedAt.After(before), "CreatedAt %v", p.CreatedAt)
	require.Equal(t, time.UTC, p.CreatedAt.Location())
	require.True(t, p.UpdatedAt.Equal(p.CreatedAt))
	require.Equal(t, "arn:aws:iam::123456789012:policy/eng/data/Lake-Read", p.ARN("123456789012"))

	got, err := s.GetManagedPolicy(ctx(t), p.ID)
	require.NoError(t, err)
	requireEqual(t, p, got)
	require.Equal(t, doc, got.Document, "documents are kept verbatim")
	got, err = s.GetManagedPolicyByName(ctx(t), "lake-READ")
	require.NoError(t, err)
	requireEqual(t, p, got)

	// Defaults: path "/".
	minimal := &store.ManagedPolicy{Name: "minimal", Document: readDoc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), minimal))
	require.Equal(t, store.DefaultPolicyPath, minimal.Path)
	require.Equal(t, "arn:aws:iam::000000000000:policy/minimal", minimal.ARN("000000000000"))

	// Explicit id; names collide case-insensitively, ids exactly.
	withID := &store.ManagedPolicy{ID: "fixed-id", Name: "third", Document: readDoc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), withID))
	require.Equal(t, "fixed-id", withID.ID)
	requireIs(t, s.CreateManagedPolicy(ctx(t), &store.ManagedPolicy{Name: "LAKE-read", Document: readDoc}), store.ErrAlreadyExists)
	requireIs(t, s.CreateManagedPolicy(ctx(t), &store.ManagedPolicy{ID: "fixed-id", Name: "other", Document: readDoc}), store.ErrAlreadyExists)

	list, err := s.ListManagedPolicies(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.ManagedPolicy{p, minimal, withID}, list)

	// Update replaces every field but ID and CreatedAt.
	created := p.CreatedAt
	p.Document, p.Description, p.Name, p.Path = readDoc, "", "Lake-Reader", "/"
	require.NoError(t, s.UpdateManagedPolicy(ctx(t), p))
	require.Equal(t, int64(2), p.Revision)
	require.True(t, p.CreatedAt.Equal(created))
	require.False(t, p.UpdatedAt.Before(created))
	got, err = s.GetManagedPolicyByName(ctx(t), "lake-reader")
	require.NoError(t, err)
	requireEqual(t, p, got)
	_, err = s.GetManagedPolicyByName(ctx(t), "Lake-Read")
	requireIs(t, err, store.ErrNotFound)
	// Renaming onto a taken name is refused.
	minimal.Name = "LAKE-READER"
	requireIs(t, s.UpdateManagedPolicy(ctx(t), minimal), store.ErrAlreadyExists)

	require.NoError(t, s.DeleteManagedPolicy(ctx(t), p.ID))
	_, err = s.GetManagedPolicy(ctx(t), p.ID)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteManagedPolicy(ctx(t), p.ID), store.ErrNotFound)
	requireIs(t, s.UpdateManagedPolicy(ctx(t), p), store.ErrNotFound)
	_, err = s.GetManagedPolicyByName(ctx(t), "nope")
	requireIs(t, err, store.ErrNotFound)

	list, err = s.ListManagedPolicies(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 2)
}

func testManagedPolicyValidation(t *testing.T, s store.ManagedPolicyStore) {
	requireIs(t, s.CreateManagedPolicy(ctx(t), &store.ManagedPolicy{Document: readDoc}), store.ErrInvalid)
	requireIs(t, s.CreateManagedPolicy(ctx(t), &store.ManagedPolicy{Name: "x"}), store.ErrInvalid)
	p := &store.ManagedPolicy{Name: "x", Document: readDoc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), p))
	p.Document = ""
	requireIs(t, s.UpdateManagedPolicy(ctx(t), p), store.ErrInvalid)
	list, err := s.ListManagedPolicies(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, readDoc, list[0].Document)
	require.NotNil(t, list)
}

func testManagedPolicyRevisionConflict(t *testing.T, s store.ManagedPolicyStore) {
	p := &store.ManagedPolicy{Name: "contended", Document: readDoc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), p))
	a, err := s.GetManagedPolicy(ctx(t), p.ID)
	require.NoError(t, err)
	b, err := s.GetManagedPolicy(ctx(t), p.ID)
	require.NoError(t, err)
	a.Description = "from a"
	require.NoError(t, s.UpdateManagedPolicy(ctx(t), a))
	b.Description = "from b"
	requireIs(t, s.UpdateManagedPolicy(ctx(t), b), store.ErrConflict)
	require.Equal(t, int64(1), b.Revision, "a failed update leaves the record's revision alone")
	got, err := s.GetManagedPolicy(ctx(t), p.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)
	got.Revision = 0
	requireIs(t, s.UpdateManagedPolicy(ctx(t), got), store.ErrConflict)
}

// testManagedPolicyConcurrentUpdates has writers append to one policy's
// description with read-modify-write cycles, retrying on ErrConflict.
// Every write must survive.
func testManagedPolicyConcurrentUpdates(t *testing.T, s store.ManagedPolicyStore) {
	const writers = 6
	p := &store.ManagedPolicy{Name: "shared", Document: readDoc}
	require.NoError(t, s.CreateManagedPolicy(ctx(t), p))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cur, err := s.GetManagedPolicy(context.Background(), p.ID)
				if err != nil {
					errs <- err
					return
				}
				cur.Description += fmt.Sprint("w", i, ";")
				err = s.UpdateManagedPolicy(context.Background(), cur)
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrConflict) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetManagedPolicy(ctx(t), p.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1+writers), got.Revision)
	for i := range writers {
		require.Contains(t, got.Description, fmt.Sprint("w", i, ";"))
	}
}
