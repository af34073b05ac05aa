package websso

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// SealedRSAKey returns the RSA-2048 private key kept under metaKey in the
// store's meta space, sealed with masterKey (AES-256-GCM, aad = metaKey).
// When the key is absent it is generated from rnd and written with a
// compare-and-swap against "absent", so replicas that race agree on one
// key: the loser reads the winner's. It never logs or returns key material
// in errors.
func SealedRSAKey(ctx context.Context, st store.Store, masterKey []byte, metaKey string, rnd io.Reader) (*rsa.PrivateKey, error) {
	aad := []byte("gatehouse/" + metaKey)
	for range 3 {
		cur, err := st.GetMeta(ctx, metaKey)
		switch {
		case err == nil && len(cur) > 0:
			der, err := secrets.Open(masterKey, cur, aad)
			if err != nil {
				return nil, fmt.Errorf("websso: open signing key %s: %w", metaKey, err)
			}
			k, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return nil, fmt.Errorf("websso: signing key %s is not PKCS#8", metaKey)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok || rk.N.BitLen() < 2048 {
				return nil, fmt.Errorf("websso: signing key %s is not an RSA key of at least 2048 bits", metaKey)
			}
			return rk, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("websso: read signing key %s: %w", metaKey, err)
		}
		k, err := rsa.GenerateKey(rnd, 2048)
		if err != nil {
			return nil, fmt.Errorf("websso: generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("websso: encode signing key: %w", err)
		}
		sealed, err := secrets.Seal(masterKey, der, aad)
		if err != nil {
			return nil, fmt.Errorf("websso: seal signing key: %w", err)
		}
		empty := []byte{}
		err = st.PutMeta(ctx, metaKey, sealed, &empty)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrAlreadyExists) {
			return nil, fmt.Errorf("websso: store signing key %s: %w", metaKey, err)
		}
		// Another replica won the race: read its key.
	}
	return nil, fmt.Errorf("websso: signing key %s: too much contention", metaKey)
}
