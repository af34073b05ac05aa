package s3gw

import (
	"slices"
	"strings"
)

// The one table of what the gateway honours (issue 13, "never accept and
// drop"). An S3 request may carry x-amz-* headers and sub-resource query
// parameters that ask for functionality: a legal hold, a retention period,
// tags, a storage class, encryption, grants. A governance product must not
// answer 200 to a request whose meaning it ignored, so every operation lists
// the x-amz-* headers and sub-resource parameters it acts on, and a request
// carrying any other is refused with NotImplemented before any effect (the
// refusal is audited like every refused request).
//
// To serve a new header or parameter: add it to its operation's entry here
// and read it in the operation's handler. Nothing else consults this table,
// so an entry without a reader is exactly the accept-and-drop this prevents.

// anyValue allows every value of a header or parameter; an empty non-nil
// list allows none (the header is refused whatever its value).
var anyValue []string

// honours is what one operation acts on. A nil value list allows any
// value; a non-nil one allows exactly those values (compared exactly, as S3
// compares enumerations). Header names are lower case; a name ending in "*"
// matches every header with that prefix.
type honours struct {
	headers map[string][]string
	params  map[string][]string
}

// everyRequest is what any operation may carry: signing, framing and the
// response-validation switch of the SDKs (x-amz-checksum-mode asks for the
// stored checksum to be returned when there is one; there never is, and
// the client then validates nothing, as with S3 for objects stored without
// a checksum). x-amz-expected-bucket-owner is checked by
// checkExpectedOwner.
var everyRequest = map[string][]string{
	"x-amz-expected-bucket-owner":  anyValue,
	"x-amz-date":                   anyValue,
	"x-amz-content-sha256":         anyValue,
	"x-amz-security-token":         anyValue,
	"x-amz-user-agent":             anyValue,
	"x-amz-decoded-content-length": anyValue,
	"x-amz-trailer":                anyValue,
	"x-amz-sdk-checksum-algorithm": anyValue,
	"x-amz-checksum-mode":          {"ENABLED"},
}

// bodyChecksums are the flexible checksums verified over a request body:
// withHeaderChecksums verifies every x-amz-checksum-<algorithm> and refuses
// an algorithm it does not know (InvalidRequest, as S3). A checksum type
// (x-amz-checksum-type: FULL_OBJECT or COMPOSITE objects) is not served.
var bodyChecksums = map[string][]string{
	"x-amz-checksum-*":         anyValue,
	"x-amz-checksum-algorithm": verifiedAlgorithms,
	"x-amz-checksum-type":      {},
}

// verifiedAlgorithms are the values of x-amz-checksum-algorithm accepted
// where an object or an upload is created: the algorithms whose checksums
// the gateway verifies on every body and part that carries one (header or
// trailer). Current AWS SDKs send CRC32 on every multipart upload by
// default; refusing it would refuse their uploads. The checksum is verified
// in transit, not stored: GET and HEAD return none, as S3 does for objects
// stored without one (docs/design/0010-s3-gateway.md).
var verifiedAlgorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

// newObject is what every operation that creates an object or an upload
// acts on: user metadata, and the values of the storage class and canned
// ACL that are what the gateway does anyway (objects are STANDARD and owned
// by the bucket owner; S3 buckets default to "ACLs disabled").
var newObject = map[string][]string{
	"x-amz-meta-*":        anyValue,
	"x-amz-tagging":       anyValue, // validated and authorized by tagging.go (s3:RequestObjectTag/*)
	"x-amz-storage-class": {"STANDARD"},
	"x-amz-acl":           {"private", "bucket-owner-full-control"},
}

// bypassHeader only lifts a protection: with no object lock served it
// lifts nothing, so a delete that sends it (SDK clean-ups do) is the same
// delete. It is authorized as s3:BypassGovernanceRetention wherever it is
// honoured (objectlock.go, bypassGovernance).
var bypassHeader = map[string][]string{"x-amz-bypass-governance-retention": anyValue}

// lockHeaders are the object lock headers of an upload. refuseLockHeaders
// admits them only on a PutObject to a backend with object lock, where
// uploadLock applies them (s3:PutObjectRetention, s3:PutObjectLegalHold).
var lockHeaders = map[string][]string{
	"x-amz-object-lock-mode": anyValue, "x-amz-object-lock-retain-until-date": anyValue,
	"x-amz-object-lock-legal-hold": anyValue,
}

// versionParam is versionId, read by readVersionID (only "null" on a
// backend without versions).
var versionParam = map[string][]string{"versionId": anyValue}

// copySourceConditions are CopyObject's and UploadPartCopy's conditions on
// the source object.
var copySourceConditions = map[string][]string{
	"x-amz-copy-source":                     anyValue,
	"x-amz-copy-source-if-match":            anyValue,
	"x-amz-copy-source-if-none-match":       anyValue,
	"x-amz-copy-source-if-modified-since":   anyValue,
	"x-amz-copy-source-if-unmodified-since": anyValue,
}

// subresources are the query parameters that select a sub-resource or a
// feature of S3 ("Signing requests: canonical resource" lists most of them,
// plus the later features). A parameter not in this list is not S3's, and
// S3 ignores it; a listed one that the operation does not honour is
// refused. Listing parameters (prefix, marker…) are not here: S3 ignores
// them where they do not apply.
var subresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption", "intelligent-tiering",
	"inventory", "legal-hold", "lifecycle", "location", "logging", "metadataTable", "metrics", "notification",
	"object-lock", "ownershipControls", "partNumber", "policy", "policyStatus", "publicAccessBlock", "renameObject",
	"replication", "requestPayment", "restore", "retention", "select", "select-type", "session", "tagging",
	"torrent", "uploadId", "uploads", "versionId", "versioning", "versions", "website",
}

// s3Enumerations are the values S3 defines for enumerated headers. A value
// outside them is the client's error (InvalidArgument, as S3 answers); a
// defined value the operation does not honour is NotImplemented.
var s3Enumerations = map[string][]string{
	"x-amz-acl": {"private", "public-read", "public-read-write", "authenticated-read", "aws-exec-read",
		"bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"},
	"x-amz-object-ownership": {"BucketOwnerPreferred", "ObjectWriter", "BucketOwnerEnforced"},
}

// honoured is the table, by operation (CloudTrail eventName).
var honoured = map[string]honours{
	"ListBuckets":          {},
	"HeadBucket":           {},
	"GetBucketLocation":    {params: map[string][]string{"location": anyValue}},
	"ListObjects":          {},
	"ListObjectsV2":        {},
	"ListMultipartUploads": {params: map[string][]string{"uploads": anyValue}},
	"CreateBucket": {headers: map[string][]string{
		"x-amz-acl":                        {"private"},
		"x-amz-bucket-object-lock-enabled": {"false", "true"}, // true: createBucket needs object lock
		"x-amz-object-ownership":           {"BucketOwnerEnforced"},
	}},
	"DeleteBucket":  {},
	"DeleteObjects": {headers: merged(bodyChecksums, bypassHeader), params: map[string][]string{"delete": anyValue}},
	"GetObject":     {params: versionParam},
	"HeadObject":    {params: versionParam},
	"PutObject":     {headers: merged(newObject, bodyChecksums, lockHeaders)},
	"CopyObject": {headers: merged(newObject, copySourceConditions, map[string][]string{
		"x-amz-metadata-directive": anyValue,
		"x-amz-tagging-directive":  anyValue, // COPY or REPLACE, checked by copyTags
	})},
	"DeleteObject": {headers: merged(bypassHeader, map[string][]string{
		"x-amz-if-match-size": anyValue, "x-amz-if-match-last-modified-time": anyValue,
	}), params: versionParam},
	"CreateMultipartUpload": {headers: merged(newObject, map[string][]string{
		"x-amz-checksum-algorithm": verifiedAlgorithms,
		"x-amz-checksum-type":      {},
	}), params: map[string][]string{"uploads": anyValue}},
	"UploadPart": {headers: bodyChecksums, params: map[string][]string{"uploadId": anyValue, "partNumber": anyValue}},
	"UploadPartCopy": {headers: merged(copySourceConditions, map[string][]string{"x-amz-copy-source-range": anyValue}),
		params: map[string][]string{"uploadId": anyValue, "partNumber": anyValue}},
	"CompleteMultipartUpload": {headers: map[string][]string{"x-amz-mp-object-size": anyValue},
		params: map[string][]string{"uploadId": anyValue}},
	"AbortMultipartUpload": {headers: map[string][]string{"x-amz-if-match-initiated-time": anyValue},
		params: map[string][]string{"uploadId": anyValue}},
	"ListParts":                  {params: map[string][]string{"uploadId": anyValue}},
	"GetObjectTagging":           {params: map[string][]string{"tagging": anyValue}},
	"PutObjectTagging":           {headers: bodyChecksums, params: map[string][]string{"tagging": anyValue}},
	"DeleteObjectTagging":        {params: map[string][]string{"tagging": anyValue}},
	"GetBucketVersioning":        {params: map[string][]string{"versioning": anyValue}},
	"PutBucketVersioning":        {headers: bodyChecksums, params: map[string][]string{"versioning": anyValue}},
	"ListObjectVersions":         {params: map[string][]string{"versions": anyValue}},
	"GetObjectLockConfiguration": {params: map[string][]string{"object-lock": anyValue}},
	"PutObjectLockConfiguration": {headers: bodyChecksums, params: map[string][]string{"object-lock": anyValue}},
	"GetObjectLegalHold":         {params: merged(versionParam, map[string][]string{"legal-hold": anyValue})},
	"PutObjectLegalHold":         {headers: bodyChecksums, params: merged(versionParam, map[string][]string{"legal-hold": anyValue})},
	"GetObjectRetention":         {params: merged(versionParam, map[string][]string{"retention": anyValue})},
	"PutObjectRetention": {headers: merged(bodyChecksums, bypassHeader),
		params: merged(versionParam, map[string][]string{"retention": anyValue})},
}

// merged returns the union of the header lists (later lists win).
func merged(ms ...map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// refuseUnhonoured refuses a request that carries an x-amz-* header or an
// S3 sub-resource parameter its operation does not act on, or one of them
// with a value the gateway does not act on, with NotImplemented naming it
// (InvalidArgument for a value S3 itself does not define).
// An operation missing from the table honours nothing beyond everyRequest.
func refuseUnhonoured(rq *request) error {
	h := honoured[rq.op]
	for name, vs := range rq.r.Header {
		ln := strings.ToLower(name)
		if !strings.HasPrefix(ln, "x-amz-") {
			continue
		}
		allowed, ok := everyRequest[ln]
		if !ok {
			allowed, ok = lookupHeader(h.headers, ln)
		}
		if enum, isEnum := s3Enumerations[ln]; isEnum && !valuesAllowed(enum, vs) {
			return errInvalidArgument("Invalid value for header " + ln + ".")
		}
		if !ok || !valuesAllowed(allowed, vs) {
			return errNotHonoured("header", ln)
		}
	}
	q := rq.r.URL.Query()
	for _, p := range subresources {
		vs, present := q[p]
		if !present {
			continue
		}
		allowed, ok := h.params[p]
		if !ok || !valuesAllowed(allowed, vs) {
			return errNotHonoured("query parameter", p)
		}
	}
	return nil
}

// checkExpectedOwner answers x-amz-expected-bucket-owner as S3 does: a
// request that names another account than the bucket owner's (every bucket
// the gateway serves is owned by the caller's role account, see owner) is
// refused AccessDenied before any effect.
func (g *Gateway) checkExpectedOwner(rq *request) error {
	want, ok := rq.r.Header["X-Amz-Expected-Bucket-Owner"]
	if !ok || rq.bucket == "" {
		return nil
	}
	if len(want) != 1 || strings.TrimSpace(want[0]) != g.owner(rq).ID {
		return errAccessDenied()
	}
	return nil
}

// lookupHeader finds ln in m, by exact name or by a "prefix*" entry.
func lookupHeader(m map[string][]string, ln string) ([]string, bool) {
	if v, ok := m[ln]; ok {
		return v, true
	}
	for k, v := range m {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(ln, p) {
			return v, true
		}
	}
	return nil, false
}

func valuesAllowed(allowed, got []string) bool {
	if allowed == nil {
		return true
	}
	for _, v := range got {
		if !slices.Contains(allowed, strings.TrimSpace(v)) {
			return false
		}
	}
	return true
}

// errNotHonoured is S3's NotImplemented ("A header you provided implies
// functionality that is not implemented"), naming what was not honoured.
func errNotHonoured(kind, name string) *Error {
	e := errNotImplemented()
	e.Message = "The " + kind + " " + name + " you provided implies functionality that is not implemented."
	if kind == "header" {
		e.Extra = [][2]string{{"Header", name}}
	}
	return e
}
