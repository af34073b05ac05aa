package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/local"
	s3backend "github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/s3"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
)

// The STS service is the gateway's Authorizer, and tells it which
// condition keys the policies name (s3:ExistingObjectTag/ is read only
// when one does).
var (
	_ s3gw.Authorizer = (*sts.Service)(nil)
	_ s3gw.KeyNamer   = (*sts.Service)(nil)
)

// openBackend opens the configured object backend.
func openBackend(cfg config.S3) (backend.Backend, error) {
	switch cfg.Backend {
	case "s3":
		return s3backend.New(s3backend.Options{
			Endpoint: cfg.Endpoint, Region: cfg.Region,
			AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
			StageUploads: cfg.StageUploads,
		})
	default:
		b, err := local.Open(cfg.LocalDir)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
}

// newS3Gateway builds the S3 front end: SigV4 verified against STS
// credentials (which also cuts off disabled users), and every
// authorization, mounts' included, through the decision point (by way of
// STS: role ∩ session ∩ boundary, and entitlement to a mount's role).
func (s *Server) newS3Gateway(ctx context.Context, cfg config.Config, log *slog.Logger) (http.Handler, error) {
	be, err := openBackend(cfg.S3)
	if err != nil {
		return nil, fmt.Errorf("server: s3 backend: %w", err)
	}
	s.Objects = be
	if cfg.S3.Buckets != "" {
		bc, ok := be.(backend.BucketAdmin)
		if !ok {
			return nil, errors.New("server: s3.buckets: this backend cannot create buckets")
		}
		for _, b := range strings.Split(cfg.S3.Buckets, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			if err := backend.EnsureBucket(ctx, bc, b); err != nil {
				return nil, fmt.Errorf("server: s3.buckets: create %q: %w", b, err)
			}
		}
	}
	verifier, err := sigv4.New(sigv4.Config{Lookup: s.STS, Service: "s3", Regions: []string{cfg.S3.Region}, Mode: sigv4.ModeS3})
	if err != nil {
		return nil, fmt.Errorf("server: s3 sigv4: %w", err)
	}
	s.Mounts = &s3gw.StaticMounts{}
	if err := s.ReloadMounts(ctx); err != nil {
		return nil, fmt.Errorf("server: s3 mounts: %w", err)
	}
	gw, err := s3gw.New(s3gw.Options{
		Backend: be, Verifier: verifier, Authorizer: s.STS, Audit: s.Audit,
		Logger: log.With("component", "s3"), Region: cfg.S3.Region, BaseDomain: cfg.S3.BaseDomain,
		MaxHeaderBytes: cfg.API.MaxHeaderBytes, MaxObjectSize: cfg.S3.MaxObjectSize,
		Mounts:        s.Mounts,
		AuthzMessages: s.authzMsgs,
		DenialWindow:  cfg.Audit.DenialWindow, DenialMaxSources: cfg.Audit.DenialMaxSources,
	})
	if err != nil {
		return nil, err
	}
	s.s3gw = gw
	return gw, nil
}

// DefaultMountRefresh is how often each replica checks the store's mount
// change counter (store.MountStore.MountsVersion) and, when it moved,
// reloads the mount table, so mounts changed through another replica apply
// here within that time. An idle tick reads one row. A mutation through
// this replica's API applies at once.
const DefaultMountRefresh = 2 * time.Second

// ReloadMounts loads every mount from the store into the gateway's table
// (s.Mounts). Reloads are serialized, so a slow one never installs an older
// table over a newer one. On error the last good table stays in force. A
// stored mount the gateway refuses (s3gw.Mount.Validate) is installed as
// broken, so that it denies every request under its prefix (fail closed),
// with a warning; it does not keep every other change from applying. It is a
// no-op when the gateway is off or the store has no mounts.
func (s *Server) ReloadMounts(ctx context.Context) error {
	if s.Mounts == nil || s.MountStore == nil {
		return nil
	}
	s.mountsMu.Lock()
	defer s.mountsMu.Unlock()
	return s.reloadMountsLocked(ctx)
}

// reloadMountsLocked is ReloadMounts under s.mountsMu. It reads the change
// counter before the table, so a write racing with the reload moves the
// counter past what it records and the next refresh reloads again.
func (s *Server) reloadMountsLocked(ctx context.Context) error {
	version, err := s.MountStore.MountsVersion(ctx)
	if err != nil {
		return err
	}
	stored, err := s.MountStore.ListMounts(ctx)
	if err != nil {
		return err
	}
	table := make(map[string]s3gw.Mount, len(stored))
	for _, m := range stored {
		table[m.ID] = s.gatewayMount(ctx, m)
	}
	return s.installMounts(table, version)
}

// gatewayMount converts a stored mount for the gateway. One the gateway
// refuses (s3gw.Mount.Validate) is marked broken, so that it denies every
// request under its prefix (fail closed), with a warning.
func (s *Server) gatewayMount(ctx context.Context, m *store.Mount) s3gw.Mount {
	gm := s3gw.Mount{ID: m.ID, Bucket: m.Bucket, Prefix: m.Prefix, RoleARN: m.RoleARN}
	if err := gm.Validate(); err != nil {
		s.log.WarnContext(ctx, "s3: stored mount is invalid; it denies every request under its prefix", "mount", m.ID, "err", err)
		gm.Broken = err.Error()
	}
	return gm
}

// installMounts puts table in force as the mounts at store change counter
// version. The caller holds s.mountsMu.
func (s *Server) installMounts(table map[string]s3gw.Mount, version int64) error {
	list := make([]s3gw.Mount, 0, len(table))
	for _, m := range table {
		list = append(list, m)
	}
	if err := s.Mounts.Set(list); err != nil {
		return err
	}
	s.mountTable, s.mountsVersion, s.mountsLoaded = table, version, true
	return nil
}

// applyMountChange puts in force the one mount change this replica's API
// just made (m as stored, or as it was when deleted) without reading the
// mount table: when the store's change counter moved by exactly one since
// the table in force was read, that move is this change. Otherwise (other
// writers in between, or no table yet) it reloads the whole table. It is
// the API's OnMountsChanged hook and cannot fail: an error is logged and
// the next refresh retries.
func (s *Server) applyMountChange(ctx context.Context, m *store.Mount, deleted bool) {
	if s.Mounts == nil || s.MountStore == nil {
		return
	}
	s.mountsMu.Lock()
	defer s.mountsMu.Unlock()
	version, err := s.MountStore.MountsVersion(ctx)
	if err == nil && s.mountsLoaded && version == s.mountsVersion+1 {
		table := maps.Clone(s.mountTable)
		if deleted {
			delete(table, m.ID)
		} else {
			table[m.ID] = s.gatewayMount(ctx, m)
		}
		err = s.installMounts(table, version)
	} else if err == nil {
		err = s.reloadMountsLocked(ctx)
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "s3: mount change not applied; keeping the last good mount table", "err", err)
	}
}

// refreshMounts reloads the mount table if the store's change counter
// moved since the last reload (or none succeeded yet), and logs a failure.
// It is one tick of maintainMounts.
func (s *Server) refreshMounts(ctx context.Context) {
	if s.Mounts == nil || s.MountStore == nil {
		return
	}
	s.mountsMu.Lock()
	defer s.mountsMu.Unlock()
	version, err := s.MountStore.MountsVersion(ctx)
	if err == nil && s.mountsLoaded && version == s.mountsVersion {
		return
	}
	if err == nil {
		err = s.reloadMountsLocked(ctx)
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "s3: mount refresh failed; keeping the last good mount table", "err", err)
	}
}

// reloadMountsLogged is ReloadMounts for callers that cannot fail.
func (s *Server) reloadMountsLogged(ctx context.Context) {
	if err := s.ReloadMounts(ctx); err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "s3: mount reload failed; keeping the last good mount table", "err", err)
	}
}

// maintainMounts refreshes the mount table on every tick until ctx ends.
func (s *Server) maintainMounts(ctx context.Context, ticks <-chan time.Time) {
	runOnTicks(ctx, ticks, func() { s.refreshMounts(ctx) })
}
