package s3gw

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

// Object versions are served when the backend keeps them (it implements
// backend.Versioner: the s3 backend). On any other backend (local) a
// request that names a version other than "null" (the version id S3 gives
// objects of unversioned buckets, that is, the current object) is refused
// before it takes effect rather than served as if for the current object:
// deleting "version X" must never delete the current object, nor reading it
// return another one. The versioning subresources answer NotImplemented
// there.

// errVersionsUnsupported is the answer to a request naming a version, or
// a versioning subresource, on a backend without versions.
func errVersionsUnsupported() *Error {
	return s3err("NotImplemented", http.StatusNotImplemented,
		"This gateway's storage does not keep object versions: versioning is not supported, and versionId is accepted only as \"null\".")
}

// namesVersion reports whether a versionId value names a version other
// than the current object's.
func namesVersion(v string) bool { return v != "null" }

// versionedOps are the object operations that honour versionId on a
// backend with versions.
var versionedOps = map[string]bool{"GetObject": true, "HeadObject": true, "DeleteObject": true,
	"GetObjectLegalHold": true, "PutObjectLegalHold": true, "GetObjectRetention": true, "PutObjectRetention": true}

// versioner returns the backend's versioning capability, if it has one.
func (g *Gateway) versioner() (backend.Versioner, bool) {
	v, ok := g.o.Backend.(backend.Versioner)
	return v, ok
}

// readVersionID sets rq.versionID from the query of an object request, or
// refuses it: on a backend without versions any version but "null", and on
// every backend a versionId on an operation that does not honour it (S3
// ignores versionId on none of them).
func (g *Gateway) readVersionID(rq *request) error {
	vs, ok := rq.r.URL.Query()["versionId"]
	if rq.key == "" || !ok || (len(vs) == 1 && vs[0] == "") {
		return nil // an empty versionId names no version, as S3 reads it
	}
	if len(vs) != 1 {
		return errInvalidArgument("Invalid version id specified")
	}
	_, versioned := g.versioner()
	switch {
	case versioned && versionedOps[rq.op]:
		rq.versionID = vs[0]
		rq.params = map[string]any{"versionId": vs[0]}
	case namesVersion(vs[0]):
		return errVersionsUnsupported()
	}
	return nil
}

// versionCond is the s3:versionid condition key of a request naming a
// version (nil otherwise).
func versionCond(rq *request) map[string][]string {
	if rq.versionID == "" {
		return nil
	}
	return map[string][]string{"s3:versionid": {rq.versionID}}
}

// objectAction is the IAM action of reading or deleting an object: the
// ...Version action when the request names a version.
func objectAction(rq *request, plain, versioned string) string {
	if rq.versionID != "" {
		return versioned
	}
	return plain
}

// routeVersioning routes the versioning and object lock subresources. It
// reports whether the request was one; ops on a backend without the
// capability are refused here, before any effect.
func (g *Gateway) routeVersioning(rq *request, q url.Values) (bool, error) {
	has := func(k string) bool { _, ok := q[k]; return ok }
	m := rq.r.Method
	type route struct {
		op string
		ro bool
		h  handlerFunc
	}
	var rt *route
	switch {
	case rq.key == "" && has("versioning") && m == http.MethodGet:
		rt = &route{"GetBucketVersioning", true, g.getBucketVersioning}
	case rq.key == "" && has("versioning") && m == http.MethodPut:
		rt = &route{"PutBucketVersioning", false, g.putBucketVersioning}
	case rq.key == "" && has("versions") && m == http.MethodGet:
		rt = &route{"ListObjectVersions", true, g.listObjectVersions}
	case rq.key == "" && has("object-lock") && m == http.MethodGet:
		rt = &route{"GetObjectLockConfiguration", true, g.getObjectLockConfiguration}
	case rq.key == "" && has("object-lock") && m == http.MethodPut:
		rt = &route{"PutObjectLockConfiguration", false, g.putObjectLockConfiguration}
	case rq.key != "" && has("legal-hold") && m == http.MethodGet:
		rt = &route{"GetObjectLegalHold", true, g.getObjectLegalHold}
	case rq.key != "" && has("legal-hold") && m == http.MethodPut:
		rt = &route{"PutObjectLegalHold", false, g.putObjectLegalHold}
	case rq.key != "" && has("retention") && m == http.MethodGet:
		rt = &route{"GetObjectRetention", true, g.getObjectRetention}
	case rq.key != "" && has("retention") && m == http.MethodPut:
		rt = &route{"PutObjectRetention", false, g.putObjectRetention}
	case has("versioning") || has("versions") || has("object-lock") || has("legal-hold") || has("retention"):
		rq.op = "Unsupported"
		return true, errMethodNotAllowed()
	default:
		return false, nil
	}
	rq.op, rq.readOnly, rq.handler = rt.op, rt.ro, rt.h
	if _, ok := g.versioner(); !ok {
		return true, errVersionsUnsupported()
	}
	if _, ok := g.locker(); !ok && rt.op != "GetBucketVersioning" && rt.op != "PutBucketVersioning" && rt.op != "ListObjectVersions" {
		return true, errLockUnsupported()
	}
	return true, nil
}

type versioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	NS        string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

func (g *Gateway) getBucketVersioning(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	v, _ := g.versioner()
	if err := g.check(ctx, rq, "s3:GetBucketVersioning", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	st, err := v.GetBucketVersioning(ctx, rq.bucket)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, versioningConfiguration{NS: s3NS, Status: st})
	return nil
}

func (g *Gateway) putBucketVersioning(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	v, _ := g.versioner()
	var cfg versioningConfiguration
	if err := decodeBody(rq, &cfg); err != nil {
		return err
	}
	// MfaDelete "Disabled" is what the gateway does; "Enabled" would be a
	// protection it never applies (an x-amz-mfa header is refused by the
	// honoured table before the handler runs).
	switch cfg.MfaDelete {
	case "", "Disabled":
	case "Enabled":
		return s3err("NotImplemented", http.StatusNotImplemented, "MFA delete is not supported by this gateway.")
	default:
		return errMalformedXML()
	}
	if cfg.Status != backend.VersioningEnabled && cfg.Status != backend.VersioningSuspended {
		return errMalformedXML()
	}
	rq.params = map[string]any{"status": cfg.Status}
	if err := g.check(ctx, rq, "s3:PutBucketVersioning", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := v.PutBucketVersioning(ctx, rq.bucket, cfg.Status); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// decodeBody reads the request's XML body (its signature checked as it is
// read, and its x-amz-checksum-* headers verified) into v; anything but
// well-formed XML is MalformedXML.
func decodeBody(rq *request, v any) error {
	body, err := withHeaderChecksums(rq.r.Header, rq.res.Body(rq.r.Body))
	if err != nil {
		return err
	}
	if err := decodeXML(body, v); err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return err
		}
		return errMalformedXML()
	}
	return nil
}

// versionsParams reads ListObjectVersions' parameters and authorizes
// s3:ListBucketVersions with s3:prefix, s3:delimiter and s3:max-keys, then
// the mounts the listing reaches, exactly as ListObjects does (guardListing).
func (g *Gateway) versionsParams(rq *request) (opts backend.ListVersionsOptions, encode bool, err error) {
	q := rq.r.URL.Query()
	opts.Prefix, opts.Delimiter, opts.MaxKeys = q.Get("prefix"), q.Get("delimiter"), 1000
	opts.KeyMarker, opts.VersionIDMarker = q.Get("key-marker"), q.Get("version-id-marker")
	if v, ok := q["max-keys"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return opts, false, errInvalidArgument("Provided max-keys not an integer or within integer range")
		}
		opts.MaxKeys = min(n, 1000)
	}
	switch q.Get("encoding-type") {
	case "":
	case "url":
		encode = true
	default:
		return opts, false, errInvalidArgument("Invalid Encoding Method specified in Request")
	}
	extra := map[string][]string{}
	rq.params = map[string]any{}
	for param, key := range map[string]string{"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys",
		"key-marker": "", "version-id-marker": "", "encoding-type": ""} {
		if v, ok := q[param]; ok {
			rq.params[param] = v[0]
			if key != "" {
				extra[key] = []string{v[0]}
			}
		}
	}
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, "s3:ListBucketVersions", bucketARN(rq.bucket), extra); err != nil {
		return opts, false, err
	}
	if err := g.guardListing(ctx, rq, "s3:ListBucketVersions", opts.Prefix, opts.Delimiter); err != nil {
		return opts, false, err
	}
	return opts, encode, nil
}

type listVersionsResult struct {
	XMLName             xml.Name          `xml:"ListVersionsResult"`
	NS                  string            `xml:"xmlns,attr"`
	Name                string            `xml:"Name"`
	Prefix              string            `xml:"Prefix"`
	KeyMarker           string            `xml:"KeyMarker"`
	VersionIDMarker     string            `xml:"VersionIdMarker"`
	NextKeyMarker       string            `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string            `xml:"NextVersionIdMarker,omitempty"`
	Delimiter           string            `xml:"Delimiter,omitempty"`
	MaxKeys             int               `xml:"MaxKeys"`
	EncodingType        string            `xml:"EncodingType,omitempty"`
	IsTruncated         bool              `xml:"IsTruncated"`
	Entries             []versionEntryXML `xml:",any"`
	CommonPrefixes      []prefixXML       `xml:"CommonPrefixes"`
}

// versionEntryXML is a Version or, XMLName DeleteMarker, a delete marker.
type versionEntryXML struct {
	XMLName      xml.Name
	Key          string `xml:"Key"`
	VersionID    string `xml:"VersionId"`
	IsLatest     bool   `xml:"IsLatest"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag,omitempty"`
	Size         *int64 `xml:"Size,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
	Owner        owner  `xml:"Owner"`
}

func (g *Gateway) listObjectVersions(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	v, _ := g.versioner()
	opts, encode, err := g.versionsParams(rq)
	if err != nil {
		return err
	}
	bctx, wait := g.accessOverlapped(ctx, rq)
	res, err := v.ListObjectVersions(bctx, rq.bucket, opts)
	if aerr := wait(); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	out := listVersionsResult{NS: s3NS, Name: rq.bucket, Prefix: encodeIf(encode, opts.Prefix),
		KeyMarker: encodeIf(encode, opts.KeyMarker), VersionIDMarker: opts.VersionIDMarker,
		Delimiter: encodeIf(encode, opts.Delimiter), MaxKeys: opts.MaxKeys, IsTruncated: res.IsTruncated}
	if encode {
		out.EncodingType = "url"
	}
	if res.IsTruncated {
		out.NextKeyMarker, out.NextVersionIDMarker = encodeIf(encode, res.NextKeyMarker), res.NextVersionIDMarker
	}
	own := g.owner(rq)
	for _, e := range res.Versions {
		x := versionEntryXML{XMLName: xml.Name{Local: "Version"}, Key: encodeIf(encode, e.Key), VersionID: e.VersionID,
			IsLatest: e.IsLatest, LastModified: xmlTime(e.LastModified), Owner: own}
		if e.DeleteMarker {
			x.XMLName.Local = "DeleteMarker"
		} else {
			size := e.Size
			x.ETag, x.Size, x.StorageClass = quote(e.ETag), &size, "STANDARD"
		}
		out.Entries = append(out.Entries, x)
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: encodeIf(encode, p)})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// deleteVersion serves, on a backend with versions, a DeleteObject that
// names a version or bypasses governance retention: s3:DeleteObjectVersion (or s3:DeleteObject), and
// s3:BypassGovernanceRetention for the bypass. Conditional deletes of a
// version are refused (NotImplemented), before any effect.
func (g *Gateway) deleteVersion(w *respWriter, rq *request, bypass bool) error {
	ctx := rq.r.Context()
	v, _ := g.versioner()
	arn := objectARN(rq.bucket, rq.key)
	if err := g.check(ctx, rq, objectAction(rq, "s3:DeleteObject", "s3:DeleteObjectVersion"), arn, versionCond(rq)); err != nil {
		return err
	}
	if bypass {
		if err := g.check(ctx, rq, "s3:BypassGovernanceRetention", arn, versionCond(rq)); err != nil {
			return err
		}
	}
	if cond, err := deletePrecondition(rq.r.Header); err != nil || cond != nil {
		if err != nil {
			return err
		}
		return s3err("NotImplemented", http.StatusNotImplemented, "Conditional deletes of a version are not supported by this gateway.")
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	res, err := v.DeleteObjectVersion(ctx, rq.bucket, rq.key, rq.versionID, bypass)
	if err != nil {
		return err
	}
	if res.VersionID != "" {
		w.Header().Set("x-amz-version-id", res.VersionID)
	}
	if res.DeleteMarker {
		w.Header().Set("x-amz-delete-marker", "true")
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
