// Package stsstack builds the credentials stack that the bench scenarios
// (internal/bench/stsbench, internal/bench/s3bench) measure: a scratch
// directory with a SQLite store and a group-mode audit log, and a keyring,
// revoker, verifier and issuer over them, as internal/server wires them.
// It is for benchmarks, not for the server.
package stsstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Stack is the built stack. Close it.
type Stack struct {
	Dir       string // the scratch directory; Close removes it
	AuditDir  string
	MasterKey []byte // 32 random bytes
	Store     *sqlite.Store
	Audit     *audit.Log
	Keyring   *credentials.Keyring
	Revoker   *credentials.Revoker
	Verifier  *credentials.Verifier
	Issuer    *credentials.Issuer
}

// New creates a scratch directory named prefix* under parent (default
// os.TempDir(); created if missing) and builds the stack in it. On error
// nothing is left behind.
func New(ctx context.Context, parent, prefix string) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if parent != "" {
		if err = os.MkdirAll(parent, 0o700); err != nil {
			return nil, err
		}
	}
	if s.Dir, err = os.MkdirTemp(parent, prefix); err != nil {
		return nil, err
	}
	s.AuditDir = filepath.Join(s.Dir, "audit")
	s.MasterKey = make([]byte, 32)
	if _, err = rand.Read(s.MasterKey); err != nil {
		return nil, err
	}
	if s.Store, err = sqlite.Open(ctx, filepath.Join(s.Dir, "gatehouse.db")); err != nil {
		return nil, fmt.Errorf("stsstack: store: %w", err)
	}
	// The default durability, as 'gatehouse serve' runs (Mode applies at fsync only).
	if s.Audit, err = audit.Open(audit.Options{Dir: s.AuditDir, Mode: audit.ModeGroup, MasterKey: s.MasterKey}); err != nil {
		return nil, fmt.Errorf("stsstack: audit: %w", err)
	}
	if s.Keyring, err = credentials.LoadOrCreateKeyring(ctx, s.Store, s.MasterKey, nil); err != nil {
		return nil, fmt.Errorf("stsstack: keyring: %w", err)
	}
	if s.Revoker, err = credentials.NewRevoker(s.Store, credentials.RevokerOptions{}); err != nil {
		return nil, err
	}
	if s.Verifier, err = credentials.NewVerifier(s.Keyring, s.Revoker); err != nil {
		return nil, err
	}
	s.Issuer = credentials.NewIssuer(s.Keyring, credentials.IssuerOptions{})
	return s, nil
}

// Close closes the audit log and the store and removes the directory.
func (s *Stack) Close() error {
	var errs []error
	if s.Audit != nil {
		errs = append(errs, s.Audit.Close())
	}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	if s.Dir != "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}
