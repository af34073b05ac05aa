package audit

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/requestid"
)

// Limits for the values the builder clips that are not attacker-chosen
// payloads as such but still come from requests.
const (
	maxSourceIP = 64  // an IPv6 address with a zone fits
	maxID       = 128 // request ids, session ids, access key ids
)

// Builder assembles one Event. NewEvent is the one constructor of audit
// events: every plane builds its events through it, so that each event
// carries the actor (end user, impersonator, session, access key), the
// source (IP, clipped User-Agent), our request id and the client's, the time
// from the plane's injected clock, and an outcome, each clipped the same way.
//
// A Builder is not safe for concurrent use; build one event, emit it, and
// drop the builder. Methods return the receiver so calls chain.
type Builder struct {
	e       Event
	now     func() time.Time
	decided bool
}

// NewEvent starts an event with a stable code and a dotted action. now is
// the caller's injected clock and must not be nil: Event stamps each event
// it returns with now(), in UTC.
func NewEvent(now func() time.Time, code Code, action string) *Builder {
	return &Builder{e: Event{Code: code, Action: Clip(action, MaxField)}, now: now}
}

// Request records the request ids on ctx: ours as RequestID, and the one the
// client sent, if any, as ClientRequestID (see package requestid).
func (b *Builder) Request(ctx context.Context) *Builder {
	return b.RequestIDs(requestid.From(ctx), requestid.ClientFrom(ctx))
}

// RequestIDs records our request id and the client's, for callers that hold
// them outside a context. Either may be empty.
func (b *Builder) RequestIDs(ours, client string) *Builder {
	b.e.RequestID = Clip(ours, maxID)
	b.e.ClientRequestID = Clip(client, maxID)
	return b
}

// Actor records who acted. Its source fields, when either is set, replace
// the source recorded so far, clipped as Source clips them; when both are
// empty the source recorded so far is kept. Every other field is clipped to
// MaxField (ids to a shorter limit).
func (b *Builder) Actor(a Actor) *Builder {
	ip, ua := a.SourceIP, a.UserAgent
	if ip == "" && ua == "" {
		ip, ua = b.e.Actor.SourceIP, b.e.Actor.UserAgent
	}
	a.UserID = Clip(a.UserID, maxID)
	a.User = Clip(a.User, MaxField)
	a.Impersonator = Clip(a.Impersonator, MaxField)
	a.AuthMethod = Clip(a.AuthMethod, maxID)
	a.SessionID = Clip(a.SessionID, maxID)
	a.AccessKeyID = Clip(a.AccessKeyID, maxID)
	b.e.Actor = a
	return b.Source(ip, ua)
}

// Source records where the request came from: the client address and its
// User-Agent, clipped to MaxUserAgent.
func (b *Builder) Source(ip, userAgent string) *Builder {
	b.e.Actor.SourceIP = Clip(ip, maxSourceIP)
	b.e.Actor.UserAgent = Clip(userAgent, MaxUserAgent)
	return b
}

// Resource records what was acted upon; its name is clipped to MaxField.
func (b *Builder) Resource(r Resource) *Builder {
	r.ID = Clip(r.ID, MaxField)
	r.Name = Clip(r.Name, MaxField)
	b.e.Resource = r
	return b
}

// Outcome records the decision and its reason (clipped to MaxReason).
func (b *Builder) Outcome(d Decision, reason string) *Builder {
	b.e.Decision, b.e.Reason, b.decided = d, Clip(reason, MaxReason), true
	return b
}

// Allow records an allow decision.
func (b *Builder) Allow() *Builder { return b.Outcome(Allow, "") }

// Deny records a deny decision with its reason.
func (b *Builder) Deny(reason string) *Builder { return b.Outcome(Deny, reason) }

// Fail records an error outcome (the action was allowed but did not apply)
// with its reason.
func (b *Builder) Fail(reason string) *Builder { return b.Outcome(Error, reason) }

// Detail sets one detail. Secrets never go in details: record keyed hashes.
func (b *Builder) Detail(key string, v any) *Builder {
	if b.e.Details == nil {
		b.e.Details = make(map[string]any)
	}
	b.e.Details[key] = v
	return b
}

// Details sets every entry of m as a detail; a nil or empty m changes
// nothing. The builder copies m, so the caller may keep using it.
func (b *Builder) Details(m map[string]any) *Builder {
	for k, v := range m {
		b.Detail(k, v)
	}
	return b
}

// Event returns the built event, stamped with the clock's current time. It
// may be called again after a change (for example Fail after a write that
// did not apply) to build a second event from the same fields. An event whose outcome was never recorded
// is returned with decision "error" and a reason saying so, never as an
// allow: the omission shows in the log instead of passing as success.
func (b *Builder) Event() Event {
	e := b.e
	e.Time = b.now().UTC()
	if !b.decided {
		e.Decision, e.Reason = Error, "outcome not recorded"
	}
	if e.Details != nil {
		d := make(map[string]any, len(e.Details))
		for k, v := range e.Details {
			d[k] = v
		}
		e.Details = d
	}
	return e
}
