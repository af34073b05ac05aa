package saml

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// storeTimeout bounds one replay-cache write; Seen has no context of its own.
const storeTimeout = 10 * time.Second

// StoreReplayCache is the ReplayCache of a gatehouse deployment: it
// records assertion IDs in the metadata store with a conditional insert
// (store.Claim) that expires when the assertion does. The first use of an
// assertion wins on every replica sharing the store and survives restarts;
// the store's sweeper deletes the record once it has expired (issue 11
// finding 5). A store error makes Seen fail, so the validation fails
// closed. It is safe for concurrent use.
type StoreReplayCache struct {
	Store store.Store
}

var _ ReplayCache = StoreReplayCache{}

// Seen implements ReplayCache. id should be a ReplayKey (fixed size).
func (c StoreReplayCache) Seen(id string, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	first, err := store.Claim(ctx, c.Store, id, until)
	if err != nil {
		return false, fmt.Errorf("saml: replay cache: %w", err)
	}
	return !first, nil
}
