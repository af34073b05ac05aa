package s3gw

import (
	"context"
	"encoding/xml"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// Object lock (legal holds and retention) is served when the backend
// applies it (backend.ObjectLocker: the s3 backend). A lock the client asks
// for is applied, or the request is refused with NotImplemented before any
// effect: never accepted and dropped. PutObject honours the
// x-amz-object-lock-* headers; CreateMultipartUpload and CopyObject refuse
// them (NotImplemented), as every operation does on a backend without
// object lock. x-amz-bypass-governance-retention is honoured on
// DeleteObject, DeleteObjects and PutObjectRetention only.

// errLockUnsupported refuses object lock on this backend or operation.
func errLockUnsupported() *Error {
	return s3err("NotImplemented", http.StatusNotImplemented,
		"Object lock (x-amz-object-lock-*, x-amz-bypass-governance-retention, legal hold, retention) is not supported here by this gateway; nothing was changed.")
}

// locker returns the backend's object lock capability, if it has one.
func (g *Gateway) locker() (backend.ObjectLocker, bool) {
	l, ok := g.o.Backend.(backend.ObjectLocker)
	return l, ok
}

const (
	hdrLockMode   = "X-Amz-Object-Lock-Mode"
	hdrLockUntil  = "X-Amz-Object-Lock-Retain-Until-Date"
	hdrLegalHold  = "X-Amz-Object-Lock-Legal-Hold"
	hdrBypassGov  = "X-Amz-Bypass-Governance-Retention"
	lockHdrPrefix = "X-Amz-Object-Lock-"
)

// hasLockHeaders reports whether the request carries any
// x-amz-object-lock-* header.
func hasLockHeaders(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, lockHdrPrefix) {
			return true
		}
	}
	return false
}

// refuseLockHeaders refuses, before any effect, object lock headers that
// this request would not apply: x-amz-object-lock-* anywhere but a
// PutObject on a backend with object lock, x-amz-bypass-governance-retention
// anywhere but DeleteObject, DeleteObjects and PutObjectRetention. The
// bypass only lifts a protection: on a backend without object lock there
// is none to lift, so a delete with it does exactly what was asked (it is
// still authorized as s3:BypassGovernanceRetention).
func (g *Gateway) refuseLockHeaders(rq *request) error {
	_, lock := g.locker()
	h := rq.r.Header
	if hasLockHeaders(h) && (!lock || rq.op != "PutObject") {
		// A malformed lock is the client's error whatever the store
		// (InvalidArgument, as S3 answers); a valid one is not applied here.
		if _, _, err := g.uploadLock(h); err != nil {
			return err
		}
		return errLockUnsupported()
	}
	if _, ok := h[hdrBypassGov]; ok && rq.op != "DeleteObject" && rq.op != "DeleteObjects" && rq.op != "PutObjectRetention" {
		return errLockUnsupported()
	}
	return nil
}

// bypassGovernance reads x-amz-bypass-governance-retention.
func bypassGovernance(h http.Header) (bool, error) {
	vs, ok := h[hdrBypassGov]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(strings.Join(vs, ",")))
	if err != nil {
		return false, errInvalidArgument("x-amz-bypass-governance-retention must be true or false")
	}
	return b, nil
}

// retentionMode checks a retention mode.
func retentionMode(m string) error {
	if m != backend.LockGovernance && m != backend.LockCompliance {
		return errInvalidArgument("Unknown wormMode directive.")
	}
	return nil
}

// retentionConds are the condition keys of a retention: s3:object-lock-mode,
// s3:object-lock-retain-until-date and s3:object-lock-remaining-retention-days
// (whole days left, rounded up).
func (g *Gateway) retentionConds(r backend.Retention, into map[string][]string) {
	if r.Mode == "" {
		return
	}
	into["s3:object-lock-mode"] = []string{r.Mode}
	into["s3:object-lock-retain-until-date"] = []string{r.RetainUntil.UTC().Format(time.RFC3339)}
	days := math.Ceil(r.RetainUntil.Sub(g.now()).Hours() / 24)
	into["s3:object-lock-remaining-retention-days"] = []string{strconv.Itoa(int(max(days, 0)))}
}

// legalHoldCond is the s3:object-lock-legal-hold condition key.
func legalHoldCond(on bool, into map[string][]string) {
	st := "OFF"
	if on {
		st = "ON"
	}
	into["s3:object-lock-legal-hold"] = []string{st}
}

// uploadLock reads the x-amz-object-lock-* headers of a PutObject: nil
// without any; the lock and its condition keys otherwise. A retention
// needs both its mode and a future date.
func (g *Gateway) uploadLock(h http.Header) (*backend.ObjectLock, map[string][]string, error) {
	if !hasLockHeaders(h) {
		return nil, nil, nil
	}
	for k := range h {
		if strings.HasPrefix(k, lockHdrPrefix) && k != hdrLockMode && k != hdrLockUntil && k != hdrLegalHold {
			return nil, nil, errLockUnsupported()
		}
	}
	lock, conds := &backend.ObjectLock{}, map[string][]string{}
	mode, until := h.Get(hdrLockMode), h.Get(hdrLockUntil)
	if (mode == "") != (until == "") {
		return nil, nil, errInvalidArgument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
	}
	if mode != "" {
		if err := retentionMode(mode); err != nil {
			return nil, nil, err
		}
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return nil, nil, errInvalidArgument("The retain until date must be provided in ISO 8601 format")
		}
		if !t.After(g.now()) {
			return nil, nil, errInvalidArgument("The retain until date must be in the future!")
		}
		lock.Retention = backend.Retention{Mode: mode, RetainUntil: t.UTC()}
		g.retentionConds(lock.Retention, conds)
	}
	if hold, ok := h[hdrLegalHold]; ok {
		switch strings.Join(hold, ",") {
		case "ON":
			lock.LegalHold = true
		case "OFF":
		default:
			return nil, nil, errInvalidArgument("Legal Hold must be either of 'ON' or 'OFF'")
		}
		legalHoldCond(lock.LegalHold, conds)
	}
	return lock, conds, nil
}

// checkUploadLock authorizes the lock of an upload: s3:PutObjectRetention
// for a retention and s3:PutObjectLegalHold for a legal hold header, each
// with the lock's condition keys (as S3 requires).
func (g *Gateway) checkUploadLock(ctx context.Context, rq *request, lock *backend.ObjectLock, conds map[string][]string) error {
	arn := objectARN(rq.bucket, rq.key)
	if lock.Retention.Mode != "" {
		if err := g.check(ctx, rq, "s3:PutObjectRetention", arn, conds); err != nil {
			return err
		}
	}
	if _, ok := rq.r.Header[hdrLegalHold]; ok {
		if err := g.check(ctx, rq, "s3:PutObjectLegalHold", arn, conds); err != nil {
			return err
		}
	}
	if rq.params == nil {
		rq.params = map[string]any{}
	}
	rq.params["objectLockMode"], rq.params["objectLockLegalHold"] = lock.Retention.Mode, lock.LegalHold
	if lock.Retention.Mode != "" {
		rq.params["objectLockRetainUntilDate"] = lock.Retention.RetainUntil.Format(time.RFC3339)
	}
	return nil
}

// withConds returns the union of the condition keys of a and b.
func withConds(a, b map[string][]string) map[string][]string {
	out := make(map[string][]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

type objectLockConfigurationXML struct {
	XMLName           xml.Name     `xml:"ObjectLockConfiguration"`
	NS                string       `xml:"xmlns,attr,omitempty"`
	ObjectLockEnabled string       `xml:"ObjectLockEnabled,omitempty"`
	Rule              *lockRuleXML `xml:"Rule,omitempty"`
}

type lockRuleXML struct {
	DefaultRetention *defaultRetentionXML `xml:"DefaultRetention"`
}

type defaultRetentionXML struct {
	Mode  string `xml:"Mode"`
	Days  int    `xml:"Days,omitempty"`
	Years int    `xml:"Years,omitempty"`
}

func (g *Gateway) getObjectLockConfiguration(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	if err := g.check(ctx, rq, "s3:GetBucketObjectLockConfiguration", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	cfg, err := l.GetObjectLockConfiguration(ctx, rq.bucket)
	if err != nil {
		return err
	}
	out := objectLockConfigurationXML{NS: s3NS}
	if cfg.Enabled {
		out.ObjectLockEnabled = "Enabled"
	}
	if cfg.Mode != "" {
		out.Rule = &lockRuleXML{DefaultRetention: &defaultRetentionXML{Mode: cfg.Mode, Days: cfg.Days, Years: cfg.Years}}
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) putObjectLockConfiguration(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	if rq.r.Header.Get("X-Amz-Bucket-Object-Lock-Token") != "" {
		return errLockUnsupported()
	}
	var in objectLockConfigurationXML
	if err := decodeBody(rq, &in); err != nil {
		return err
	}
	cfg := backend.LockConfiguration{Enabled: in.ObjectLockEnabled == "Enabled"}
	if in.ObjectLockEnabled != "" && !cfg.Enabled {
		return errMalformedXML()
	}
	if in.Rule != nil {
		d := in.Rule.DefaultRetention
		if d != nil && (d.Days < 0 || d.Years < 0) {
			return errInvalidArgument("Default retention period must be a positive integer value.")
		}
		if d == nil || (d.Days > 0) == (d.Years > 0) {
			return errMalformedXML()
		}
		if err := retentionMode(d.Mode); err != nil {
			return errMalformedXML()
		}
		cfg.Mode, cfg.Days, cfg.Years = d.Mode, d.Days, d.Years
	}
	rq.params = map[string]any{"objectLockEnabled": cfg.Enabled, "defaultMode": cfg.Mode, "defaultDays": cfg.Days, "defaultYears": cfg.Years}
	if err := g.check(ctx, rq, "s3:PutBucketObjectLockConfiguration", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := l.PutObjectLockConfiguration(ctx, rq.bucket, cfg); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

type legalHoldXML struct {
	XMLName xml.Name `xml:"LegalHold"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	Status  string   `xml:"Status"`
}

func (g *Gateway) getObjectLegalHold(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	if err := g.check(ctx, rq, "s3:GetObjectLegalHold", objectARN(rq.bucket, rq.key), versionCond(rq)); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	on, err := l.GetObjectLegalHold(ctx, rq.bucket, rq.key, rq.versionID)
	if err != nil {
		return err
	}
	st := "OFF"
	if on {
		st = "ON"
	}
	writeXML(w, http.StatusOK, legalHoldXML{NS: s3NS, Status: st})
	return nil
}

func (g *Gateway) putObjectLegalHold(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	var in legalHoldXML
	if err := decodeBody(rq, &in); err != nil {
		return err
	}
	if in.Status != "ON" && in.Status != "OFF" {
		return errMalformedXML()
	}
	on := in.Status == "ON"
	conds := withConds(versionCond(rq), nil)
	legalHoldCond(on, conds)
	if rq.params == nil {
		rq.params = map[string]any{}
	}
	rq.params["legalHold"] = in.Status
	if err := g.check(ctx, rq, "s3:PutObjectLegalHold", objectARN(rq.bucket, rq.key), conds); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := l.PutObjectLegalHold(ctx, rq.bucket, rq.key, rq.versionID, on); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

type retentionXML struct {
	XMLName         xml.Name `xml:"Retention"`
	NS              string   `xml:"xmlns,attr,omitempty"`
	Mode            string   `xml:"Mode,omitempty"`
	RetainUntilDate string   `xml:"RetainUntilDate,omitempty"`
}

func (g *Gateway) getObjectRetention(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	if err := g.check(ctx, rq, "s3:GetObjectRetention", objectARN(rq.bucket, rq.key), versionCond(rq)); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	r, err := l.GetObjectRetention(ctx, rq.bucket, rq.key, rq.versionID)
	if err != nil {
		return err
	}
	out := retentionXML{NS: s3NS, Mode: r.Mode}
	if r.Mode != "" {
		out.RetainUntilDate = xmlTime(r.RetainUntil)
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) putObjectRetention(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	l, _ := g.locker()
	var in retentionXML
	if err := decodeBody(rq, &in); err != nil {
		return err
	}
	var r backend.Retention
	if in.Mode != "" || in.RetainUntilDate != "" {
		if err := retentionMode(in.Mode); err != nil {
			return errMalformedXML()
		}
		t, err := time.Parse(time.RFC3339, in.RetainUntilDate)
		if err != nil {
			return errMalformedXML()
		}
		r = backend.Retention{Mode: in.Mode, RetainUntil: t.UTC()}
	}
	bypass, err := bypassGovernance(rq.r.Header)
	if err != nil {
		return err
	}
	conds := withConds(versionCond(rq), nil)
	g.retentionConds(r, conds)
	if rq.params == nil {
		rq.params = map[string]any{}
	}
	rq.params["retentionMode"], rq.params["bypassGovernanceRetention"] = r.Mode, bypass
	if r.Mode != "" {
		rq.params["retainUntilDate"] = r.RetainUntil.Format(time.RFC3339)
	}
	arn := objectARN(rq.bucket, rq.key)
	if err := g.check(ctx, rq, "s3:PutObjectRetention", arn, conds); err != nil {
		return err
	}
	if bypass {
		if err := g.check(ctx, rq, "s3:BypassGovernanceRetention", arn, conds); err != nil {
			return err
		}
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := l.PutObjectRetention(ctx, rq.bucket, rq.key, rq.versionID, r, bypass); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// lockHeaders returns the x-amz-object-lock-* headers of a GetObject or
// HeadObject answer for info's lock, as S3 shows them: the retention only
// to a caller allowed s3:GetObjectRetention, the legal hold only to one
// allowed s3:GetObjectLegalHold (decided here, before the access record);
// nil when there is nothing to show.
func (g *Gateway) lockHeaders(ctx context.Context, rq *request, info backend.ObjectInfo) http.Header {
	if info.Lock == nil {
		return nil
	}
	h := http.Header{}
	arn := objectARN(rq.bucket, rq.key)
	if r := info.Lock.Retention; r.Mode != "" {
		if ok, _, _ := g.decide(ctx, rq, "s3:GetObjectRetention", arn, versionCond(rq)); ok {
			h.Set(hdrLockMode, r.Mode)
			h.Set(hdrLockUntil, r.RetainUntil.UTC().Format(time.RFC3339))
		}
	}
	if ok, _, _ := g.decide(ctx, rq, "s3:GetObjectLegalHold", arn, versionCond(rq)); ok {
		st := "OFF"
		if info.Lock.LegalHold {
			st = "ON"
		}
		h.Set(hdrLegalHold, st)
	}
	return h
}

// setHeaders copies h into w's header.
func setHeaders(w http.ResponseWriter, h http.Header) {
	for k, v := range h {
		w.Header()[k] = v
	}
}
