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

// RunMounts runs the conformance suite of store.MountStore. open must
// return a fresh, empty store for each call and arrange for it to be closed
// and discarded with t.Cleanup.
func RunMounts(t *testing.T, open func(t *testing.T) store.MountStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.MountStore)
	}{
		{"CRUD", testMountCRUD},
		{"Validation", testMountValidation},
		{"RevisionConflict", testMountRevisionConflict},
		{"ConcurrentUpdatesLoseNothing", testMountConcurrentUpdates},
		{"VersionMovesOnEveryWrite", testMountsVersion},
	}
	for _, tc := range tests {
		t.Run("Mount"+tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

const (
	hrRole    = "arn:aws:iam::123456789012:role/hr-reader"
	salesRole = "arn:aws:iam::123456789012:role/sales"
)

func testMountCRUD(t *testing.T, s store.MountStore) {
	before := time.Now().Add(-time.Second)
	m := &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: hrRole, Description: "HR data — Grüße"}
	require.NoError(t, s.CreateMount(ctx(t), m))
	_, err := uuid.Parse(m.ID)
	require.NoError(t, err, "generated id must be a uuid")
	require.Equal(t, int64(1), m.Revision)
	require.True(t, m.CreatedAt.After(before), "CreatedAt %v", m.CreatedAt)
	require.Equal(t, time.UTC, m.CreatedAt.Location())
	require.True(t, m.UpdatedAt.Equal(m.CreatedAt))

	got, err := s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	requireEqual(t, m, got)

	// Explicit id; the same prefix in another bucket, and a nested prefix in
	// the same bucket, are distinct mounts.
	withID := &store.Mount{ID: "fixed-id", Bucket: "lake", Prefix: "hr/secret/", RoleARN: salesRole}
	require.NoError(t, s.CreateMount(ctx(t), withID))
	require.Equal(t, "fixed-id", withID.ID)
	other := &store.Mount{Bucket: "archive", Prefix: "hr/", RoleARN: hrRole}
	require.NoError(t, s.CreateMount(ctx(t), other))

	// (bucket, prefix) and ids are unique; prefixes compare exactly.
	requireIs(t, s.CreateMount(ctx(t), &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: salesRole}), store.ErrAlreadyExists)
	requireIs(t, s.CreateMount(ctx(t), &store.Mount{ID: "fixed-id", Bucket: "lake", Prefix: "x/", RoleARN: hrRole}), store.ErrAlreadyExists)
	upper := &store.Mount{Bucket: "lake", Prefix: "HR/", RoleARN: hrRole}
	require.NoError(t, s.CreateMount(ctx(t), upper), "S3 keys are case-sensitive")

	// Ordered by bucket, prefix (bytes), then id.
	list, err := s.ListMounts(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.Mount{other, upper, m, withID}, list)

	// Update replaces every field but ID and CreatedAt.
	created := m.CreatedAt
	m.Prefix, m.RoleARN, m.Description = "people/", salesRole, ""
	require.NoError(t, s.UpdateMount(ctx(t), m))
	require.Equal(t, int64(2), m.Revision)
	require.True(t, m.CreatedAt.Equal(created))
	require.False(t, m.UpdatedAt.Before(created))
	got, err = s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	requireEqual(t, m, got)
	// Moving onto a taken (bucket, prefix) is refused and changes nothing.
	withID.Prefix = "people/"
	requireIs(t, s.UpdateMount(ctx(t), withID), store.ErrAlreadyExists)
	got, err = s.GetMount(ctx(t), withID.ID)
	require.NoError(t, err)
	require.Equal(t, "hr/secret/", got.Prefix)
	require.Equal(t, int64(1), got.Revision)

	require.NoError(t, s.DeleteMount(ctx(t), m.ID))
	_, err = s.GetMount(ctx(t), m.ID)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteMount(ctx(t), m.ID), store.ErrNotFound)
	requireIs(t, s.UpdateMount(ctx(t), m), store.ErrNotFound)
	// The freed (bucket, prefix) can be mounted again.
	require.NoError(t, s.CreateMount(ctx(t), &store.Mount{Bucket: "lake", Prefix: "people/", RoleARN: hrRole}))

	list, err = s.ListMounts(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 4)
}

func testMountValidation(t *testing.T, s store.MountStore) {
	list, err := s.ListMounts(ctx(t))
	require.NoError(t, err)
	require.NotNil(t, list, "an empty list is not nil")
	require.Empty(t, list)
	for _, bad := range []*store.Mount{
		{Prefix: "hr/", RoleARN: hrRole},
		{Bucket: "lake", RoleARN: hrRole},
		{Bucket: "lake", Prefix: "hr", RoleARN: hrRole},
		{Bucket: "lake", Prefix: "hr/"},
	} {
		requireIs(t, s.CreateMount(ctx(t), bad), store.ErrInvalid)
	}
	m := &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: hrRole}
	require.NoError(t, s.CreateMount(ctx(t), m))
	m.Prefix = "no-slash"
	requireIs(t, s.UpdateMount(ctx(t), m), store.ErrInvalid)
	list, err = s.ListMounts(ctx(t))
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "hr/", list[0].Prefix)
}

func testMountRevisionConflict(t *testing.T, s store.MountStore) {
	m := &store.Mount{Bucket: "lake", Prefix: "contended/", RoleARN: hrRole}
	require.NoError(t, s.CreateMount(ctx(t), m))
	a, err := s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	b, err := s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	a.RoleARN = salesRole
	require.NoError(t, s.UpdateMount(ctx(t), a))
	b.Description = "from b"
	requireIs(t, s.UpdateMount(ctx(t), b), store.ErrConflict)
	require.Equal(t, int64(1), b.Revision, "a failed update leaves the record's revision alone")
	got, err := s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)
	got.Revision = 0
	requireIs(t, s.UpdateMount(ctx(t), got), store.ErrConflict)
}

// testMountConcurrentUpdates has writers append to one mount's description
// with read-modify-write cycles, retrying on ErrConflict. Every write must
// survive.
func testMountConcurrentUpdates(t *testing.T, s store.MountStore) {
	const writers = 6
	m := &store.Mount{Bucket: "lake", Prefix: "shared/", RoleARN: hrRole}
	require.NoError(t, s.CreateMount(ctx(t), m))
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cur, err := s.GetMount(context.Background(), m.ID)
				if err != nil {
					errs <- err
					return
				}
				cur.Description += fmt.Sprint("w", i, ";")
				err = s.UpdateMount(context.Background(), cur)
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
	got, err := s.GetMount(ctx(t), m.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1+writers), got.Revision)
	for i := range writers {
		require.Contains(t, got.Description, fmt.Sprint("w", i, ";"))
	}
}

// testMountsVersion checks MountsVersion: every create, update and delete
// raises it, and it stays put while nothing is written (reads and refused
// writes included), so a replica can skip reloading an unchanged table.
func testMountsVersion(t *testing.T, s store.MountStore) {
	version := func() int64 {
		t.Helper()
		v, err := s.MountsVersion(ctx(t))
		require.NoError(t, err)
		return v
	}
	v0 := version()
	require.Equal(t, v0, version(), "reading changes nothing")
	m := &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: "arn:aws:iam::000000000000:role/hr"}
	require.NoError(t, s.CreateMount(ctx(t), m))
	v1 := version()
	require.Greater(t, v1, v0, "create")
	_, err := s.ListMounts(ctx(t))
	require.NoError(t, err)
	requireIs(t, s.CreateMount(ctx(t), &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: "x"}), store.ErrAlreadyExists)
	require.Equal(t, v1, version(), "a list and a refused create change nothing")
	m.Description = "payroll"
	require.NoError(t, s.UpdateMount(ctx(t), m))
	v2 := version()
	require.Greater(t, v2, v1, "update")
	require.NoError(t, s.DeleteMount(ctx(t), m.ID))
	require.Greater(t, version(), v2, "delete")
}
