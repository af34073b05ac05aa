package decision

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ChangeMarkKey is the store meta key under which replicas publish that
// users, groups, roles or providers changed.
const ChangeMarkKey = "decision/change-mark"

// MaxAge bounds how long a cached input whose change mark has not moved
// is trusted: past it, the input is read again whatever the mark says, so
// a write that did not move the mark (a failed Bump, a tool writing the
// store directly) applies within MaxAge.
const MaxAge = time.Minute

// ChangeMark reads the mark that every replica moves after each change
// (see StoreChangeMark). A different value means something changed.
type ChangeMark interface {
	Read(ctx context.Context) ([]byte, error)
}

// metaStore is the part of store.Store a StoreChangeMark uses.
type metaStore interface {
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error
}

// StoreChangeMark is the change mark shared through the store's meta
// space: Bump writes a fresh random value, Read returns the current one
// (empty when no change was ever published). One GetMeta per Read is the
// whole cost of a replica checking whether its caches are current.
type StoreChangeMark struct {
	Store metaStore
}

// Read implements ChangeMark.
func (m StoreChangeMark) Read(ctx context.Context) ([]byte, error) {
	v, err := m.Store.GetMeta(ctx, ChangeMarkKey)
	if errors.Is(err, store.ErrNotFound) {
		return []byte{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decision: read change mark: %w", err)
	}
	return v, nil
}

// Bump publishes a change: every replica's next check finds a new mark.
func (m StoreChangeMark) Bump(ctx context.Context) error {
	v := make([]byte, 16)
	rand.Read(v)
	if err := m.Store.PutMeta(ctx, ChangeMarkKey, v, nil); err != nil {
		return fmt.Errorf("decision: publish change: %w", err)
	}
	return nil
}
