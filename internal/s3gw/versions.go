package s3gw

import "net/http"

// gatehouse keeps one version of each object: no backend it speaks to is
// used with S3 versioning. A request that names a version other than
// "null" (the version id S3 gives objects of unversioned buckets, that is,
// the current object) is refused before it takes effect rather than served
// as if for the current object: deleting "version X" must never delete the
// current object, nor reading it return another one.

// errVersionsUnsupported is the answer to a request naming a version.
func errVersionsUnsupported() *Error {
	return s3err("NotImplemented", http.StatusNotImplemented,
		"This gateway does not support object versions: versionId is accepted only as \"null\".")
}

// namesVersion reports whether a versionId value names a version other
// than the current object's.
func namesVersion(v string) bool { return v != "null" }

// refuseVersionID refuses an object request whose query names a version
// (GetObject, HeadObject, DeleteObject and every other object operation;
// S3 ignores versionId on none of them).
func refuseVersionID(rq *request) error {
	if rq.key == "" {
		return nil
	}
	if vs, ok := rq.r.URL.Query()["versionId"]; ok {
		for _, v := range vs {
			if namesVersion(v) {
				return errVersionsUnsupported()
			}
		}
	}
	return nil
}
