// Package decision is gatehouse's one decision point: every access question
// (may this session perform this S3 action, may this principal assume this
// role, which roles may this user pick, may this caller act as a mount's
// role) is answered here, by one evaluation path over compiled IAM policies
// and one cache. Front ends (STS, the S3 gateway, the web sign-in, later the
// SQL and catalog planes) build a Request and act on the Answer; no other
// package evaluates IAM policies for access (guard_test.go checks it).
//
// The cache holds compiled roles, the trust-policy index and per-user
// entitlements. An entry is reused while the point's change generation is
// unchanged and for at most TTL (one second by default), so a change made
// through this replica applies at once (Changed) and one made on another
// replica within TTL. See docs/design/0016-decision-point.md.
package decision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Store is what the decision point reads from the metadata store. It never
// writes. GroupsOfUser must not load the members of the groups it returns
// to be cheap for large groups; the point never asks for members.
type Store interface {
	GetUser(ctx context.Context, id string) (*store.User, error)
	GroupsOfUser(ctx context.Context, userID string) ([]*store.Group, error)
	GetRoleByName(ctx context.Context, name string) (*store.Role, error)
	ListRoles(ctx context.Context) ([]*store.Role, error)
}

// ManagedPolicies resolves managed policy ARNs named by a session
// (PolicyArns) to their current documents.
type ManagedPolicies interface {
	ManagedPolicy(ctx context.Context, arn string) (string, error)
}

// DefaultTTL bounds how long a cached answer input (a compiled role, the
// trust index, a user's entitlements) is reused without a change
// notification: a change made on another replica applies within it.
const DefaultTTL = time.Second

// Options configure a Point. Store and AccountID are required.
type Options struct {
	Store     Store
	AccountID string
	// SelfIssuer is gatehouse's own OIDC issuer (api.public_url) and
	// Audience the audience of its web-identity tokens: the role picker and
	// mount entitlement evaluate trust policies as that issuer's
	// AssumeRoleWithWebIdentity would. Empty SelfIssuer: nobody is
	// entitled through the picker.
	SelfIssuer string
	Audience   string
	// ManagedPolicies resolves session PolicyArns (nil: such sessions are
	// denied).
	ManagedPolicies ManagedPolicies
	// Mark, when set, is the change mark replicas share (StoreChangeMark):
	// an input older than TTL is then kept, up to MaxAge, while the mark
	// has not moved since it was read, instead of being read again.
	Mark   ChangeMark
	Clock  func() time.Time // default time.Now
	TTL    time.Duration    // default DefaultTTL
	Logger *slog.Logger
}

// Point is the decision point. Safe for concurrent use.
type Point struct {
	o   Options
	log *slog.Logger
	gen atomic.Uint64 // bumped by Changed

	mu       sync.Mutex
	byName   map[string]*roleEntry // folded role name -> entry
	byID     map[string]*Role      // role id -> last compiled revision
	index    *trustIndex
	entitled map[string]*entitlement // user id -> entitlement
	sessions sessionCache
}

// New validates o and returns a Point.
func New(o Options) (*Point, error) {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if o.AccountID == "" {
		errs = append(errs, errors.New("AccountID is required"))
	}
	if o.TTL < 0 {
		errs = append(errs, errors.New("TTL must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("decision: %w", errors.Join(errs...))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.Logger == nil {
		o.Logger = slog.Default().With("component", "decision")
	}
	p := &Point{o: o, log: o.Logger, byID: map[string]*Role{}}
	p.reset()
	p.sessions.m = map[string]*sessionEntry{}
	return p, nil
}

// reset drops every cached input that a change can make stale. Compiled
// roles stay: they are keyed by revision, so a change cannot make one
// wrong, and recompiling every role after each directory write would make
// the first answer after it pay for all of them.
func (p *Point) reset() {
	p.byName = map[string]*roleEntry{}
	p.index = nil
	p.entitled = map[string]*entitlement{}
}

// Changed tells the point that users, groups, roles or providers changed
// in the store: every cached input is read again on its next use. Call it
// after the write has landed (the server's store wrapper does, for every
// write through this replica).
func (p *Point) Changed() {
	p.gen.Add(1)
	p.mu.Lock()
	p.reset()
	p.mu.Unlock()
}

// fresh reports whether an entry stamped (gen, at) may still be used.
func (p *Point) fresh(gen uint64, at time.Time) bool {
	now := p.o.Clock()
	return gen == p.gen.Load() && now.Sub(at) < p.o.TTL && !now.Before(at)
}

// readMark returns the shared change mark, or nil when there is none or
// it cannot be read (the caller then reads its input again).
func (p *Point) readMark(ctx context.Context) []byte {
	if p.o.Mark == nil {
		return nil
	}
	m, err := p.o.Mark.Read(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "decision: change mark unreadable; reading inputs again", "err", err)
		return nil
	}
	return m
}

// unchanged reports whether an entry stamped (gen, built, mark) that is
// past its TTL may be kept: no change here since, younger than MaxAge, and
// the shared mark still the one read when it was built.
func (p *Point) unchanged(ctx context.Context, gen uint64, built time.Time, mark []byte) bool {
	now := p.o.Clock()
	if mark == nil || gen != p.gen.Load() || now.Sub(built) >= MaxAge || now.Before(built) {
		return false
	}
	cur := p.readMark(ctx)
	return cur != nil && bytes.Equal(cur, mark)
}

// Obligation is a condition attached to an Allow that the front end must
// enforce on the data it returns (docs/design/0016-decision-point.md).
// S3 decisions carry none today; the SQL and catalog planes will carry
// row filters and column masks.
type Obligation struct {
	// Kind is ObligationRowFilter or ObligationColumnMask.
	Kind string `json:"kind"`
	// Securable is the catalog securable it applies to
	// (catalog.schema.table, or catalog.schema.table.column for a mask).
	Securable string `json:"securable"`
	// Expression is the filter predicate or the mask expression, in the
	// SQL plane's dialect, over the securable's columns.
	Expression string `json:"expression"`
	// Policy names the policy that imposed it, for audit.
	Policy string `json:"policy"`
}

// Obligation kinds.
const (
	ObligationRowFilter  = "row-filter"
	ObligationColumnMask = "column-mask"
)

// Answer is the decision point's answer to one Request.
type Answer struct {
	// Result is the evaluation: Decision, the deciding statements and layer.
	iam.Result
	// ActedAs is the role the request was evaluated as, when the principal
	// acted as another role (a mount's).
	ActedAs string
	// Obligations must all be enforced by the front end for an Allow;
	// a front end that cannot enforce one must deny (fail closed).
	Obligations []Obligation
}

// Allowed reports whether the answer allows the request.
func (a Answer) Allowed() bool { return a.Decision == iam.Allowed }
