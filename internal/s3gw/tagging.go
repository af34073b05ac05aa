package s3gw

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Object tagging (Amazon S3 "Categorizing your storage using tags") and the
// condition keys it feeds: s3:ExistingObjectTag/<key> on the actions that
// read or retag an existing object, s3:RequestObjectTag/<key> and
// s3:RequestObjectTagKeys on writes that carry tags.

// Tag limits (Amazon S3 object tagging): at most 10 tags, keys of 1 to 128
// and values of up to 256 Unicode characters.
const (
	maxTags        = 10
	maxTagKeyLen   = 128
	maxTagValueLen = 256
)

// Condition key names, lower-case as the decision point reads them.
const (
	existingTagPrefix = "s3:existingobjecttag/"
	requestTagPrefix  = "s3:requestobjecttag/"
	requestTagKeys    = "s3:requestobjecttagkeys"
)

// existingTagActions are the actions whose decisions see the object's
// current tags as s3:ExistingObjectTag/<key>. AWS does not offer the key
// on PutObject and DeleteObject (an overwrite or delete is not governed by
// the tags of what it replaces).
var existingTagActions = map[string]bool{
	"s3:GetObject": true, "s3:GetObjectTagging": true, "s3:PutObjectTagging": true, "s3:DeleteObjectTagging": true,
}

// versionTagActions are the actions AWS governs by the tags of the version
// they name. The backend's Tagger reads the current object's tags only, so
// such a request is denied whenever a policy that could decide it names
// s3:ExistingObjectTag/ (fail closed: deciding without the key would let a
// Deny conditioned on it pass), and decided as usual otherwise.
var versionTagActions = map[string]bool{"s3:GetObjectVersion": true}

// errVersionTags is why a version request governed by tags is denied.
var errVersionTags = errors.New("s3:ExistingObjectTag is not available for object versions yet, and a policy that could decide this request names it")

// KeyNamer is an optional capability of an Authorizer: whether a policy
// that could decide a request of this session (acting as roleARN when it
// is set) names a condition key that starts with prefix. The gateway asks
// it before it reads an object's tags for s3:ExistingObjectTag/, so that a
// request no tag policy governs costs no extra backend call. Without it,
// or on an error, the gateway reads the tags for every decision that could
// use them. (*sts.Service) implements it over the decision point.
type KeyNamer interface {
	NamesKeyPrefix(ctx context.Context, claims *credentials.Claims, roleARN, prefix string) (bool, error)
}

// caseFoldedTags explains the refusal of tag keys that differ only in
// case: S3 keeps them apart, but condition keys are case-insensitive, so
// s3:ExistingObjectTag/<key> and s3:RequestObjectTag/<key> could not.
const caseFoldedTags = "Tag keys that differ only in case are not accepted: policies cannot tell them apart"

var errInvalidTag = func(msg string) *Error { return s3err("InvalidTag", http.StatusBadRequest, msg) }

// taggingXML is the Tagging document of Get/PutObjectTagging.
type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// validTagChar reports whether r may appear in a tag key or value: letters,
// numbers and spaces representable in UTF-8, and + - = . _ : / @.
func validTagChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == ' ' || strings.ContainsRune("+-=._:/@", r)
}

// validateTags checks a tag set as S3 does, and refuses keys that differ
// only in case (caseFoldedTags), and returns it as a map:
// BadRequest for more than 10 tags; InvalidTag for a key or value too long or with another
// character, a key starting with "aws:", or a key given twice.
func validateTags(tags []tagXML) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, s3err("BadRequest", http.StatusBadRequest, "Object tags cannot be greater than 10")
	}
	m := make(map[string]string, len(tags))
	folded := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > maxTagKeyLen || !utf8.ValidString(t.Key):
			return nil, errInvalidTag("The TagKey you have provided is invalid")
		case utf8.RuneCountInString(t.Value) > maxTagValueLen || !utf8.ValidString(t.Value):
			return nil, errInvalidTag("The TagValue you have provided is invalid")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return nil, errInvalidTag("Your TagKey cannot be prefixed with aws:")
		case strings.IndexFunc(t.Key, func(r rune) bool { return !validTagChar(r) }) >= 0:
			return nil, errInvalidTag("The TagKey you have provided is invalid")
		case strings.IndexFunc(t.Value, func(r rune) bool { return !validTagChar(r) }) >= 0:
			return nil, errInvalidTag("The TagValue you have provided is invalid")
		}
		if _, dup := m[t.Key]; dup {
			return nil, errInvalidTag("Cannot provide multiple Tags with the same key")
		}
		f := strings.ToLower(t.Key)
		if folded[f] {
			return nil, errInvalidTag(caseFoldedTags)
		}
		folded[f] = true
		m[t.Key] = t.Value
	}
	return m, nil
}

// headerTags reads x-amz-tagging, a URL query string of tags: nil when
// the header is absent, InvalidArgument when it is not a query string or
// names a key twice or an empty key, and validateTags' errors otherwise.
func headerTags(h http.Header) (map[string]string, error) {
	vs, ok := h["X-Amz-Tagging"]
	if !ok {
		return nil, nil
	}
	raw := strings.Join(vs, "&")
	var tags []tagXML
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || key == "" || seen[key] {
			return nil, errInvalidArgument("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
		}
		seen[key] = true
		tags = append(tags, tagXML{Key: key, Value: val})
	}
	return validateTags(tags)
}

// requestTagContext returns the condition keys of the tags a write carries
// (s3:RequestObjectTag/<key>, s3:RequestObjectTagKeys), and records their
// keys, never their values, in the request's audit record. Nil tags: none.
func requestTagContext(rq *request, tags map[string]string) map[string][]string {
	if tags == nil {
		return nil
	}
	keys := tagKeys(tags)
	if rq.params == nil {
		rq.params = map[string]any{}
	}
	rq.params["tagKeys"] = keys
	if len(tags) == 0 {
		return nil
	}
	c := make(map[string][]string, len(tags)+1)
	for k, v := range tags {
		c[requestTagPrefix+strings.ToLower(k)] = []string{v}
	}
	c[requestTagKeys] = keys
	return c
}

func tagKeys(tags map[string]string) []string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// tagger returns the backend's tagging capability, or NotImplemented: a
// request that sets or reads tags is refused rather than have its tags
// dropped.
func (g *Gateway) tagger() (backend.Tagger, error) {
	t, ok := g.o.Backend.(backend.Tagger)
	if !ok {
		return nil, errNotImplemented()
	}
	return t, nil
}

// existingTags returns the current tags of bucket/key, read once per
// request: none when the object or the backend's tagging is absent.
func (g *Gateway) existingTags(ctx context.Context, rq *request, bucket, key string) (map[string]string, error) {
	res := objectARN(bucket, key)
	if tags, ok := rq.tags[res]; ok {
		return tags, nil
	}
	t, ok := g.o.Backend.(backend.Tagger)
	if !ok {
		return nil, nil
	}
	tags, err := t.GetObjectTagging(ctx, bucket, key)
	if errors.Is(err, backend.ErrNoSuchKey) || errors.Is(err, backend.ErrNoSuchBucket) {
		tags, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rq.tags == nil {
		rq.tags = map[string]map[string]string{}
	}
	rq.tags[res] = tags
	return tags, nil
}

// withExistingTags adds s3:ExistingObjectTag/<key> for the object of
// resource to reqCtx when action can be governed by them and a policy that
// could decide it names such a key. It returns reqCtx itself when nothing
// is added, a new map otherwise.
func (g *Gateway) withExistingTags(ctx context.Context, rq *request, actAs, action, resource string, reqCtx map[string][]string) (map[string][]string, error) {
	bucket, key := splitS3ARN(resource)
	if key == "" || !existingTagActions[action] && !versionTagActions[action] {
		return reqCtx, nil
	}
	if kn, ok := g.o.Authorizer.(KeyNamer); ok {
		named, err := kn.NamesKeyPrefix(ctx, rq.claims, actAs, existingTagPrefix)
		if err == nil && !named {
			return reqCtx, nil
		}
	}
	if versionTagActions[action] {
		return nil, errVersionTags
	}
	tags, err := g.existingTags(ctx, rq, bucket, key)
	if err != nil || len(tags) == 0 {
		return reqCtx, err
	}
	if bucket == rq.bucket && key == rq.key {
		rq.existingTagKeys = tagKeys(tags)
	}
	out := make(map[string][]string, len(reqCtx)+len(tags))
	for k, v := range reqCtx {
		out[k] = v
	}
	for k, v := range tags {
		ck := existingTagPrefix + strings.ToLower(k)
		if _, dup := out[ck]; dup {
			// Stored beside the gateway: the policy cannot tell the keys
			// apart, so neither decides (fail closed).
			return nil, fmt.Errorf("object %s: %s", resource, caseFoldedTags)
		}
		out[ck] = []string{v}
	}
	return out, nil
}

// tagCountHeader sets x-amz-tagging-count when the object has tags and the
// caller may read them (s3:GetObjectTagging), as S3 does.
func (g *Gateway) tagCountHeader(ctx context.Context, w http.ResponseWriter, rq *request, n int) {
	if n == 0 {
		return
	}
	if ok, _, _ := g.decide(ctx, rq, "s3:GetObjectTagging", objectARN(rq.bucket, rq.key), nil); ok {
		w.Header().Set("x-amz-tagging-count", strconv.Itoa(n))
	}
}

func (g *Gateway) getObjectTagging(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	t, err := g.tagger()
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:GetObjectTagging", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	tags, err := t.GetObjectTagging(ctx, rq.bucket, rq.key)
	if err != nil {
		return err
	}
	rq.params = map[string]any{"tagKeys": tagKeys(tags)}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	doc := taggingXML{NS: s3NS, TagSet: []tagXML{}}
	for _, k := range tagKeys(tags) {
		doc.TagSet = append(doc.TagSet, tagXML{Key: k, Value: tags[k]})
	}
	writeXML(w, http.StatusOK, doc)
	return nil
}

func (g *Gateway) putObjectTagging(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	t, err := g.tagger()
	if err != nil {
		return err
	}
	body, err := verifiedBody(rq)
	if err != nil {
		return err
	}
	var doc taggingXML
	if err := decodeXML(body, &doc); err != nil {
		var se *sigv4.Error
		var e *Error
		if errors.As(err, &se) || errors.As(err, &e) {
			return err // a failed signature, checksum or Content-MD5
		}
		return errMalformedXML()
	}
	tags, err := validateTags(doc.TagSet)
	if err != nil {
		return err
	}
	extra := requestTagContext(rq, tags)
	if err := g.check(ctx, rq, "s3:PutObjectTagging", objectARN(rq.bucket, rq.key), extra); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := t.PutObjectTagging(ctx, rq.bucket, rq.key, tags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) deleteObjectTagging(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	t, err := g.tagger()
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:DeleteObjectTagging", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := t.PutObjectTagging(ctx, rq.bucket, rq.key, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeTags reads the tags a PutObject or CreateMultipartUpload carries
// (x-amz-tagging) into meta and returns their condition keys. Tags on a
// backend that cannot store them are NotImplemented.
func (g *Gateway) writeTags(rq *request, meta *backend.Metadata) (map[string][]string, error) {
	tags, err := headerTags(rq.r.Header)
	if err != nil || tags == nil {
		return nil, err
	}
	if len(tags) > 0 {
		if _, err := g.tagger(); err != nil {
			return nil, err
		}
		meta.Tags = tags
	}
	return requestTagContext(rq, tags), nil
}

// copyTags applies x-amz-tagging-directive to a CopyObject: COPY (the
// default) keeps the source's tags and refuses x-amz-tagging, REPLACE sets
// the request's. It returns the tags the copy gets when it must set them
// (nil for "as the source"), whether it must, and the condition keys of
// the request's tags.
func (g *Gateway) copyTags(rq *request) (tags map[string]string, replace bool, extra map[string][]string, err error) {
	switch d := rq.r.Header.Get("X-Amz-Tagging-Directive"); d {
	case "", "COPY":
		if _, ok := rq.r.Header["X-Amz-Tagging"]; ok {
			return nil, false, nil, errInvalidArgument("x-amz-tagging requires x-amz-tagging-directive REPLACE.")
		}
		return nil, false, nil, nil
	case "REPLACE":
		tags, err := headerTags(rq.r.Header)
		if err != nil {
			return nil, false, nil, err
		}
		if tags == nil {
			tags = map[string]string{}
		}
		if len(tags) > 0 {
			if _, err := g.tagger(); err != nil {
				return nil, false, nil, err
			}
		}
		return tags, true, requestTagContext(rq, tags), nil
	default:
		return nil, false, nil, errInvalidArgument("Unknown tagging directive.")
	}
}
