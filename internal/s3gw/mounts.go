package s3gw

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

// Mount binds a bucket prefix to a role (the seed's bucket mounts with
// fs.s3a.stsAssumeRole.arn): a request for a key under Prefix is
// authorized as RoleARN instead of the caller's session role, if the
// caller is entitled to RoleARN, without the caller switching credentials.
// The caller's session policy still applies (it can only narrow).
type Mount struct {
	ID      string
	Bucket  string
	Prefix  string // non-empty, ends with "/"
	RoleARN string
	// Broken, when not empty, says why this stored mount failed
	// validation. A broken mount still governs its prefix, and denies
	// every request under it (fail closed): skipping it would hand the
	// prefix back to the callers' own roles.
	Broken string
}

// Validate checks a mount's fields.
func (m Mount) Validate() error {
	var errs []error
	if m.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if err := s3name.Bucket(m.Bucket); err != nil {
		errs = append(errs, err)
	}
	if !strings.HasSuffix(m.Prefix, "/") || s3name.Key(m.Prefix) != nil {
		errs = append(errs, fmt.Errorf("prefix %q must be a valid key prefix ending in /", m.Prefix))
	}
	if !strings.HasPrefix(m.RoleARN, "arn:aws:iam::") || !strings.Contains(m.RoleARN, ":role/") {
		errs = append(errs, fmt.Errorf("role ARN %q is not an IAM role ARN", m.RoleARN))
	}
	if len(errs) > 0 {
		return fmt.Errorf("s3gw: mount %q: %w", m.ID, errors.Join(errs...))
	}
	return nil
}

// MountResolver finds the mount governing a key (or list prefix) in a
// bucket: the one with the longest Prefix that the path starts with.
// MountsUnder lists the mounts of a bucket that a listing of prefix reaches
// into: those whose Prefix starts with prefix and is longer than it.
type MountResolver interface {
	MountFor(ctx context.Context, bucket, path string) (Mount, bool, error)
	MountsUnder(ctx context.Context, bucket, prefix string) ([]Mount, error)
}

// StaticMounts is an in-memory MountResolver; Set replaces the whole table
// (for example after reloading mounts from the store). Safe for concurrent use.
type StaticMounts struct {
	mu     sync.RWMutex
	mounts []Mount // sorted by descending prefix length
}

// Set validates and installs mounts. A Broken mount is installed without
// validation, but needs a bucket and a prefix to govern.
func (s *StaticMounts) Set(mounts []Mount) error {
	ms := slices.Clone(mounts)
	for _, m := range ms {
		if m.Broken != "" {
			if m.Bucket == "" || m.Prefix == "" {
				return fmt.Errorf("s3gw: broken mount %q names no bucket prefix to deny", m.ID)
			}
			continue
		}
		if err := m.Validate(); err != nil {
			return err
		}
	}
	slices.SortFunc(ms, func(a, b Mount) int { return len(b.Prefix) - len(a.Prefix) })
	s.mu.Lock()
	s.mounts = ms
	s.mu.Unlock()
	return nil
}

// MountFor implements MountResolver.
func (s *StaticMounts) MountFor(ctx context.Context, bucket, path string) (Mount, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.mounts {
		if m.Bucket == bucket && strings.HasPrefix(path, m.Prefix) {
			return m, true, nil
		}
	}
	return Mount{}, false, nil
}

// MountsUnder implements MountResolver.
func (s *StaticMounts) MountsUnder(ctx context.Context, bucket, prefix string) ([]Mount, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Mount
	for _, m := range s.mounts {
		if m.Bucket == bucket && len(m.Prefix) > len(prefix) && strings.HasPrefix(m.Prefix, prefix) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (rq *request) addMount(m Mount) {
	for _, x := range rq.mounts {
		if x.ID == m.ID {
			return
		}
	}
	rq.mounts = append(rq.mounts, m)
}
