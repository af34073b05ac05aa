// Package local is the embedded storage backend: a directory on the local
// file system, laid out so that other tools (DuckDB) can read it directly.
//
//	<dir>/<bucket>/<key>                      object data, one file per key
//	<dir>/<bucket>/<prefix>/.gatehouse-dir    the "<prefix>/" directory-marker object
//	<dir>/.gatehouse/tmp/                     temporary files of writes in progress
//	<dir>/.gatehouse/uploads/<bucket>/<id>/   staged multipart uploads (upload.json, part files)
//
// An object's ETag and metadata live in an extended attribute of its file,
// set on the temporary file before the rename that publishes it: a write
// (temp file, fsync, rename, fsync of the directory) lands whole, data and
// metadata together, or not at all. Every path is opened through an
// os.Root, so neither a key nor a symbolic link can reach outside dir.
package local

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

const (
	sysDir     = ".gatehouse"
	tmpDir     = sysDir + "/tmp"
	uploadsDir = sysDir + "/uploads"
	markerName = ".gatehouse-dir"
	reserved   = ".gatehouse" // key segments may not start with it
)

// Backend stores objects under a directory. Safe for concurrent use.
type Backend struct {
	dir  string
	root *os.Root
	now  func() time.Time
	// mu serializes multipart completion against uploads of the same id.
	mu sync.Mutex
	// keys serializes publishing and deleting per object path, so that a
	// precondition is checked atomically with the write (ConditionalWriter).
	keys backend.KeyLocks
}

var (
	_ backend.Backend           = (*Backend)(nil)
	_ backend.BucketAdmin       = (*Backend)(nil)
	_ backend.ConditionalWriter = (*Backend)(nil)
	_ backend.Tagger            = (*Backend)(nil)
)

// check evaluates cond against the current object at bucket/key. The
// caller holds the key's lock.
func (b *Backend) check(bucket, key string, cond backend.Precondition) error {
	if cond == nil {
		return nil
	}
	info, err := b.HeadObject(context.Background(), bucket, key)
	switch {
	case errors.Is(err, backend.ErrNoSuchKey):
		return cond(nil)
	case err != nil:
		return err
	}
	return cond(&info)
}

// publishIf publishes tmp as bucket/key (at dst) if cond holds, removing
// tmp otherwise.
func (b *Backend) publishIf(tmp, dst, bucket, key string, cond backend.Precondition) error {
	unlock := b.keys.Lock(dst)
	defer unlock()
	err := b.check(bucket, key, cond)
	if err == nil {
		err = b.publish(tmp, dst)
	}
	if err != nil {
		b.root.Remove(tmp)
	}
	return err
}

// Open opens (creating if needed) the backend directory and checks that it
// supports extended attributes.
func Open(dir string) (*Backend, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	b := &Backend{dir: dir, root: root, now: time.Now}
	for _, d := range []string{tmpDir, uploadsDir} {
		if err := root.MkdirAll(d, 0o750); err != nil {
			root.Close()
			return nil, fmt.Errorf("local backend: %w", err)
		}
	}
	f, err := b.createTemp()
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("local backend: %w", err)
	}
	err = setMeta(f, []byte("{}"))
	f.Close()
	b.root.Remove(tmpDir + "/" + path.Base(f.Name()))
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("local backend: %s must support user extended attributes: %w", dir, err)
	}
	return b, nil
}

// Close releases the directory handle.
func (b *Backend) Close() error { return b.root.Close() }

// TempFiles counts temporary files of writes in progress (or leaked).
func (b *Backend) TempFiles() int {
	ents, _ := b.readDir(tmpDir)
	return len(ents)
}

// Dir is the backend directory.
func (b *Backend) Dir() string { return b.dir }

// stored is the extended attribute's content.
type stored struct {
	ETag string           `json:"etag"`
	Meta backend.Metadata `json:"meta"`
}

// objectPath maps a validated key to its file, relative to the root.
func objectPath(bucket, key string) (string, error) {
	if err := s3name.Bucket(bucket); err != nil {
		return "", err
	}
	if err := s3name.Key(key); err != nil {
		return "", err
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, reserved) {
			return "", fmt.Errorf("%w: segments starting with %q are reserved", s3name.ErrInvalidKey, reserved)
		}
		if len(seg) > 255 {
			return "", fmt.Errorf("%w: path segment longer than 255 bytes", s3name.ErrInvalidKey)
		}
	}
	if strings.HasSuffix(key, "/") {
		return bucket + "/" + key + markerName, nil
	}
	return bucket + "/" + key, nil
}

func (b *Backend) bucketDir(bucket string) (string, error) {
	if err := s3name.Bucket(bucket); err != nil {
		return "", err
	}
	fi, err := b.root.Stat(bucket)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s", backend.ErrNoSuchBucket, bucket)
	}
	return bucket, nil
}

// ListBuckets lists the top-level directories.
func (b *Backend) ListBuckets(ctx context.Context) ([]backend.BucketInfo, error) {
	ents, err := b.readDir(".")
	if err != nil {
		return nil, fmt.Errorf("local backend: list buckets: %w", err)
	}
	var out []backend.BucketInfo
	for _, e := range ents {
		if !e.IsDir() || s3name.Bucket(e.Name()) != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, backend.BucketInfo{Name: e.Name(), Created: info.ModTime().UTC()})
	}
	return out, nil
}

// HeadBucket checks that the bucket exists.
func (b *Backend) HeadBucket(ctx context.Context, bucket string) error {
	_, err := b.bucketDir(bucket)
	return err
}

// CreateBucket creates the bucket directory (backend.BucketAdmin).
func (b *Backend) CreateBucket(ctx context.Context, bucket string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	if err := b.root.Mkdir(bucket, 0o750); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", backend.ErrBucketExists, bucket)
		}
		return fmt.Errorf("local backend: create bucket: %w", err)
	}
	return nil
}

// DeleteBucket removes an empty bucket.
func (b *Backend) DeleteBucket(ctx context.Context, bucket string) error {
	d, err := b.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := b.root.Remove(d); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("%w: %s", backend.ErrBucketNotEmpty, bucket)
		}
		return fmt.Errorf("local backend: delete bucket: %w", err)
	}
	b.root.RemoveAll(uploadsDir + "/" + bucket)
	return nil
}

func (b *Backend) readDir(dir string) ([]fs.DirEntry, error) {
	f, err := b.root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func randomHex(n int) string {
	buf := make([]byte, n)
	rand.Read(buf)
	return hex.EncodeToString(buf)
}

func (b *Backend) createTemp() (*os.File, error) {
	return b.root.OpenFile(tmpDir+"/"+randomHex(12), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
}

// copyExact copies exactly size bytes from r to w and then reads r to EOF,
// so that a verifying reader (SigV4 payload hash, chunk signatures, digests)
// gets to report its verdict. Any error, or a body of a different length,
// fails the copy.
func copyExact(w io.Writer, r io.Reader, size int64) error {
	n, err := io.CopyN(w, r, size)
	if err != nil {
		if errors.Is(err, io.EOF) && n < size {
			return backend.ErrIncompleteBody
		}
		return err
	}
	var one [1]byte
	for range 64 {
		n, err := r.Read(one[:])
		if n > 0 {
			return errors.New("local backend: body longer than its declared size")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// writeTemp streams body into a new temporary file, fsyncs it and sets its
// metadata attribute (with the MD5 ETag unless etag is given). On error the
// temporary file is removed.
func (b *Backend) writeTemp(body io.Reader, size int64, etag string, meta backend.Metadata) (tmp string, info backend.ObjectInfo, err error) {
	f, err := b.createTemp()
	if err != nil {
		return "", info, fmt.Errorf("local backend: %w", err)
	}
	name := tmpDir + "/" + path.Base(f.Name())
	defer func() {
		if err != nil {
			f.Close()
			b.root.Remove(name) // not tmp: a return statement has reset it
		}
	}()
	var h hash.Hash
	var w io.Writer = f
	if etag == "" {
		h = md5.New()
		w = io.MultiWriter(f, h)
	}
	if err = copyExact(w, body, size); err != nil {
		return "", info, err
	}
	if h != nil {
		etag = hex.EncodeToString(h.Sum(nil))
	}
	raw, err := json.Marshal(stored{ETag: etag, Meta: meta})
	if err != nil {
		return "", info, err
	}
	if err = setMeta(f, raw); err != nil {
		return "", info, metaErr(err)
	}
	if err = f.Sync(); err != nil {
		return "", info, fmt.Errorf("local backend: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", info, fmt.Errorf("local backend: %w", err)
	}
	if err = f.Close(); err != nil {
		return "", info, fmt.Errorf("local backend: %w", err)
	}
	info = backend.ObjectInfo{Size: size, ETag: etag, LastModified: fi.ModTime().UTC(), Metadata: meta, TagCount: len(meta.Tags)}
	info.Metadata.Tags = nil
	return name, info, nil
}

// publish renames tmp to dst, creating parent directories, and fsyncs the
// parent. A conflicting file or directory is ErrKeyConflict.
func (b *Backend) publish(tmp, dst string) error {
	parent := path.Dir(dst)
	for attempt := 0; ; attempt++ {
		if err := b.root.MkdirAll(parent, 0o750); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", backend.ErrKeyConflict, dst)
			}
			return fmt.Errorf("local backend: %w", err)
		}
		if fi, err := b.root.Lstat(dst); err == nil && fi.IsDir() {
			return fmt.Errorf("%w: %s", backend.ErrKeyConflict, dst)
		}
		err := b.root.Rename(tmp, dst)
		if err == nil {
			break
		}
		// A concurrent delete may have pruned the parent we just made.
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", backend.ErrKeyConflict, dst)
		}
		return fmt.Errorf("local backend: %w", err)
	}
	return b.syncDir(parent)
}

func (b *Backend) syncDir(dir string) error {
	d, err := b.root.Open(dir)
	if err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("local backend: fsync %s: %w", dir, err)
	}
	return nil
}

// PutObject writes the object atomically.
func (b *Backend) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata) (backend.ObjectInfo, error) {
	return b.PutObjectIf(ctx, bucket, key, body, size, meta, nil)
}

// PutObjectIf is PutObject, published only if cond holds (ConditionalWriter).
func (b *Backend) PutObjectIf(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, cond backend.Precondition) (backend.ObjectInfo, error) {
	dst, err := objectPath(bucket, key)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if _, err := b.bucketDir(bucket); err != nil {
		return backend.ObjectInfo{}, err
	}
	if size < 0 {
		return backend.ObjectInfo{}, errors.New("local backend: object size is required")
	}
	tmp, info, err := b.writeTemp(body, size, "", meta)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if err := b.publishIf(tmp, dst, bucket, key, cond); err != nil {
		return backend.ObjectInfo{}, err
	}
	info.Key = key
	return info, nil
}

// open opens the object's file and reads its info.
func (b *Backend) open(bucket, key string) (*os.File, backend.ObjectInfo, error) {
	p, err := objectPath(bucket, key)
	if err != nil {
		return nil, backend.ObjectInfo{}, err
	}
	f, err := b.root.Open(p)
	if err != nil {
		if _, berr := b.bucketDir(bucket); berr != nil {
			return nil, backend.ObjectInfo{}, berr
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, backend.ObjectInfo{}, fmt.Errorf("%w: %s", backend.ErrNoSuchKey, key)
		}
		return nil, backend.ObjectInfo{}, fmt.Errorf("local backend: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, backend.ObjectInfo{}, fmt.Errorf("%w: %s", backend.ErrNoSuchKey, key)
	}
	info, err := fileInfo(f, fi, key)
	if err != nil {
		f.Close()
		return nil, backend.ObjectInfo{}, err
	}
	return f, info, nil
}

// fileInfo reads the object's info; its tags are counted, not returned.
func fileInfo(f *os.File, fi fs.FileInfo, key string) (backend.ObjectInfo, error) {
	st, err := storedOf(f, fi)
	info := backend.ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime().UTC(), ETag: st.ETag,
		Metadata: st.Meta, TagCount: len(st.Meta.Tags)}
	info.Metadata.Tags = nil
	return info, err
}

// storedOf reads the file's metadata attribute whole, tags included.
func storedOf(f *os.File, fi fs.FileInfo) (stored, error) {
	raw, err := getMeta(f)
	if err != nil {
		return stored{}, fmt.Errorf("local backend: read metadata: %w", err)
	}
	var st stored
	if raw == nil || json.Unmarshal(raw, &st) != nil || st.ETag == "" {
		// A file placed without the gateway: a stable stand-in ETag.
		sum := md5.Sum([]byte(strconv.FormatInt(fi.Size(), 10) + ":" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)))
		st = stored{ETag: hex.EncodeToString(sum[:])}
	}
	return st, nil
}

// metaErr classifies a failure to set the metadata attribute: one that
// does not fit the file system's attribute space is ErrMetadataTooLarge.
func metaErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.E2BIG) || errors.Is(err, syscall.ERANGE) {
		return fmt.Errorf("local backend: set metadata: %w (%w)", backend.ErrMetadataTooLarge, err)
	}
	return fmt.Errorf("local backend: set metadata: %w", err)
}

// GetObjectTagging returns the object's tags (Tagger).
func (b *Backend) GetObjectTagging(ctx context.Context, bucket, key string) (map[string]string, error) {
	f, _, err := b.open(bucket, key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("local backend: %w", err)
	}
	st, err := storedOf(f, fi)
	return st.Meta.Tags, err
}

// PutObjectTagging replaces the object's tags (Tagger). The tags live in
// the metadata attribute, which one setxattr replaces whole (atomically),
// under the key's lock so that no write publishes a new file meanwhile;
// the attribute is synced before it returns.
func (b *Backend) PutObjectTagging(ctx context.Context, bucket, key string, tags map[string]string) error {
	p, err := objectPath(bucket, key)
	if err != nil {
		return err
	}
	unlock := b.keys.Lock(p)
	defer unlock()
	f, _, err := b.open(bucket, key)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	st, err := storedOf(f, fi)
	if err != nil {
		return err
	}
	st.Meta.Tags = nil
	if len(tags) > 0 {
		st.Meta.Tags = tags
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := setMeta(f, raw); err != nil {
		return metaErr(err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("local backend: %w", err)
	}
	return nil
}

type rangeReader struct {
	io.Reader
	f *os.File
}

func (r *rangeReader) Close() error { return r.f.Close() }

// GetObject opens the object for reading.
func (b *Backend) GetObject(ctx context.Context, bucket, key string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	f, info, err := b.open(bucket, key)
	if err != nil {
		return nil, info, err
	}
	if rng == nil {
		return f, info, nil
	}
	if rng.Start < 0 || rng.Length < 0 || rng.Start+rng.Length > info.Size {
		f.Close()
		return nil, info, backend.ErrInvalidRange
	}
	if _, err := f.Seek(rng.Start, io.SeekStart); err != nil {
		f.Close()
		return nil, info, fmt.Errorf("local backend: %w", err)
	}
	return &rangeReader{Reader: io.LimitReader(f, rng.Length), f: f}, info, nil
}

// HeadObject returns the object's info.
func (b *Backend) HeadObject(ctx context.Context, bucket, key string) (backend.ObjectInfo, error) {
	f, info, err := b.open(bucket, key)
	if err != nil {
		return info, err
	}
	f.Close()
	return info, nil
}

// DeleteObject removes the file and prunes directories left empty.
func (b *Backend) DeleteObject(ctx context.Context, bucket, key string) error {
	return b.DeleteObjectIf(ctx, bucket, key, nil)
}

// DeleteObjectIf is DeleteObject, done only if cond holds (ConditionalWriter).
func (b *Backend) DeleteObjectIf(ctx context.Context, bucket, key string, cond backend.Precondition) error {
	p, err := objectPath(bucket, key)
	if err != nil {
		return err
	}
	if _, err := b.bucketDir(bucket); err != nil {
		return err
	}
	unlock := b.keys.Lock(p)
	defer unlock()
	if err := b.check(bucket, key, cond); err != nil {
		return err
	}
	if fi, err := b.root.Lstat(p); err == nil && fi.IsDir() {
		return nil // "a" when only "a/..." exists: nothing to delete
	}
	if err := b.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("local backend: delete: %w", err)
	}
	for dir := path.Dir(p); dir != bucket && dir != "." && dir != "/"; dir = path.Dir(dir) {
		if b.root.Remove(dir) != nil {
			break // not empty (or gone): stop pruning
		}
	}
	return nil
}

// CopyObject streams src into a new object at dst.
func (b *Backend) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, meta *backend.Metadata) (backend.ObjectInfo, error) {
	dst, err := objectPath(dstBucket, dstKey)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if _, err := b.bucketDir(dstBucket); err != nil {
		return backend.ObjectInfo{}, err
	}
	f, src, err := b.open(srcBucket, srcKey)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	defer f.Close()
	var m backend.Metadata
	if meta != nil {
		m = *meta
	} else {
		fi, err := f.Stat()
		if err != nil {
			return backend.ObjectInfo{}, fmt.Errorf("local backend: %w", err)
		}
		st, err := storedOf(f, fi)
		if err != nil {
			return backend.ObjectInfo{}, err
		}
		m = st.Meta // with the source's tags
	}
	tmp, info, err := b.writeTemp(f, src.Size, src.ETag, m)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if err := b.publishIf(tmp, dst, dstBucket, dstKey, nil); err != nil {
		return backend.ObjectInfo{}, err
	}
	info.Key = dstKey
	return info, nil
}

// errStop ends a listing walk early.
var errStop = errors.New("stop")

type lister struct {
	b      *Backend
	bucket string
	opts   backend.ListOptions
	res    backend.ListResult
	lastCP string
}

func (l *lister) emit(key string, obj *backend.ObjectInfo) error {
	if len(l.res.Objects)+len(l.res.CommonPrefixes) >= l.opts.MaxKeys {
		l.res.IsTruncated = true
		return errStop
	}
	if obj != nil {
		l.res.Objects = append(l.res.Objects, *obj)
	} else {
		l.res.CommonPrefixes = append(l.res.CommonPrefixes, key)
		l.lastCP = key
	}
	l.res.NextAfter = key
	return nil
}

// rollup returns the common prefix key rolls into, if any.
func (l *lister) rollup(key string) (string, bool) {
	d := l.opts.Delimiter
	if d == "" || !strings.HasPrefix(key, l.opts.Prefix) {
		return "", false
	}
	rest := key[len(l.opts.Prefix):]
	i := strings.Index(rest, d)
	if i < 0 {
		return "", false
	}
	return l.opts.Prefix + rest[:i+len(d)], true
}

func (l *lister) object(key, rel string) error {
	if !strings.HasPrefix(key, l.opts.Prefix) || key <= l.opts.After {
		return nil
	}
	if cp, ok := l.rollup(key); ok {
		if cp <= l.opts.After || cp == l.lastCP {
			return nil
		}
		return l.emit(cp, nil)
	}
	f, err := l.b.root.Open(rel)
	if err != nil {
		return nil // deleted meanwhile
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		return nil
	}
	info, err := fileInfo(f, fi, key)
	if err != nil {
		return err
	}
	return l.emit(key, &info)
}

// walk lists directory dir (relative to the bucket, "" or ending in "/") in
// S3 key order: a directory "d" sorts as "d/".
func (l *lister) walk(dir string) error {
	rel := l.bucket
	if dir != "" {
		rel += "/" + strings.TrimSuffix(dir, "/")
	}
	ents, err := l.b.readDir(rel)
	if err != nil {
		return nil // vanished or not a directory: nothing to list
	}
	if dir != "" {
		if fi, err := l.b.root.Lstat(rel + "/" + markerName); err == nil && fi.Mode().IsRegular() {
			if err := l.object(dir, rel+"/"+markerName); err != nil {
				return err
			}
		}
	}
	type ent struct {
		name string
		dir  bool
	}
	es := make([]ent, 0, len(ents))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), reserved) {
			continue
		}
		es = append(es, ent{e.Name(), e.IsDir()})
	}
	sortKey := func(e ent) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	slices.SortFunc(es, func(a, b ent) int { return cmp.Compare(sortKey(a), sortKey(b)) })
	p, after := l.opts.Prefix, l.opts.After
	for _, e := range es {
		key := dir + e.name
		if !e.dir {
			if err := l.object(key, rel+"/"+e.name); err != nil {
				return err
			}
			continue
		}
		dkey := key + "/"
		if !strings.HasPrefix(dkey, p) && !strings.HasPrefix(p, dkey) {
			continue
		}
		if after > dkey && !strings.HasPrefix(after, dkey) {
			continue // every key below dkey sorts before After
		}
		if cp, ok := l.rollup(dkey); ok && len(cp) <= len(dkey) {
			// Everything below rolls up into cp.
			if cp > after && cp != l.lastCP {
				if err := l.emit(cp, nil); err != nil {
					return err
				}
			}
			continue
		}
		if err := l.walk(dkey); err != nil {
			return err
		}
	}
	return nil
}

// ListObjects lists keys in S3 order by walking the directory tree.
func (b *Backend) ListObjects(ctx context.Context, bucket string, opts backend.ListOptions) (backend.ListResult, error) {
	if _, err := b.bucketDir(bucket); err != nil {
		return backend.ListResult{}, err
	}
	l := &lister{b: b, bucket: bucket, opts: opts}
	if opts.MaxKeys <= 0 {
		return l.res, nil
	}
	base := opts.Prefix[:strings.LastIndex(opts.Prefix, "/")+1]
	if base != "" && s3name.Key(base) != nil {
		return l.res, nil // no stored key can have this prefix
	}
	if err := l.walk(base); err != nil && !errors.Is(err, errStop) {
		return backend.ListResult{}, fmt.Errorf("local backend: list: %w", err)
	}
	if !l.res.IsTruncated {
		l.res.NextAfter = ""
	}
	return l.res, nil
}

// upload is the staged state of a multipart upload (upload.json).
type upload struct {
	Bucket    string           `json:"bucket"`
	Key       string           `json:"key"`
	Initiated time.Time        `json:"initiated"`
	Meta      backend.Metadata `json:"meta"`
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func uploadPath(bucket, id string) string { return uploadsDir + "/" + bucket + "/" + id }

func (b *Backend) loadUpload(bucket, key, id string) (*upload, error) {
	if !validUploadID(id) {
		return nil, fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, id)
	}
	raw, err := b.root.ReadFile(uploadPath(bucket, id) + "/upload.json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, id)
	}
	var u upload
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("local backend: upload %s: %w", id, err)
	}
	if key != "" && u.Key != key {
		return nil, fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, id)
	}
	return &u, nil
}

// CreateMultipartUpload stages a new upload.
func (b *Backend) CreateMultipartUpload(ctx context.Context, bucket, key string, meta backend.Metadata) (string, error) {
	if _, err := objectPath(bucket, key); err != nil {
		return "", err
	}
	if _, err := b.bucketDir(bucket); err != nil {
		return "", err
	}
	id := randomHex(16)
	dir := uploadPath(bucket, id)
	if err := b.root.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("local backend: %w", err)
	}
	raw, _ := json.Marshal(upload{Bucket: bucket, Key: key, Initiated: b.now().UTC(), Meta: meta})
	if err := b.root.WriteFile(dir+"/upload.json", raw, 0o640); err != nil {
		return "", fmt.Errorf("local backend: %w", err)
	}
	if err := b.syncDir(dir); err != nil {
		return "", err
	}
	return id, nil
}

func partName(n int) string { return fmt.Sprintf("part-%05d", n) }

// UploadPart stages one part.
func (b *Backend) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int, body io.Reader, size int64) (backend.PartInfo, error) {
	if _, err := objectPath(bucket, key); err != nil {
		return backend.PartInfo{}, err
	}
	if partNumber < 1 || partNumber > backend.MaxParts {
		return backend.PartInfo{}, fmt.Errorf("%w: part number %d", backend.ErrInvalidPart, partNumber)
	}
	if _, err := b.loadUpload(bucket, key, uploadID); err != nil {
		return backend.PartInfo{}, err
	}
	tmp, info, err := b.writeTemp(body, size, "", backend.Metadata{})
	if err != nil {
		return backend.PartInfo{}, err
	}
	dir := uploadPath(bucket, uploadID)
	if err := b.root.Rename(tmp, dir+"/"+partName(partNumber)); err != nil {
		b.root.Remove(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			return backend.PartInfo{}, fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, uploadID)
		}
		return backend.PartInfo{}, fmt.Errorf("local backend: %w", err)
	}
	if err := b.syncDir(dir); err != nil {
		return backend.PartInfo{}, err
	}
	return backend.PartInfo{PartNumber: partNumber, ETag: info.ETag, Size: info.Size, LastModified: info.LastModified}, nil
}

func (b *Backend) parts(bucket, uploadID string) ([]backend.PartInfo, error) {
	dir := uploadPath(bucket, uploadID)
	ents, err := b.readDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, uploadID)
	}
	var out []backend.PartInfo
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "part-")
		if !ok {
			continue
		}
		num, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		f, err := b.root.Open(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		info, err := fileInfo(f, fi, "")
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, backend.PartInfo{PartNumber: num, ETag: info.ETag, Size: info.Size, LastModified: info.LastModified})
	}
	slices.SortFunc(out, func(a, b backend.PartInfo) int { return a.PartNumber - b.PartNumber })
	return out, nil
}

// multiReader concatenates the part files, closing each when done.
type partsReader struct {
	b     *Backend
	dir   string
	parts []backend.CompletePart
	cur   *os.File
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.parts) == 0 {
				return 0, io.EOF
			}
			f, err := r.b.root.Open(r.dir + "/" + partName(r.parts[0].PartNumber))
			if err != nil {
				return 0, err
			}
			r.cur, r.parts = f, r.parts[1:]
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (r *partsReader) Close() {
	if r.cur != nil {
		r.cur.Close()
	}
}

// CompleteMultipartUpload concatenates the parts into the object.
func (b *Backend) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []backend.CompletePart) (backend.ObjectInfo, error) {
	return b.CompleteMultipartUploadIf(ctx, bucket, key, uploadID, parts, nil)
}

// CompleteMultipartUploadIf is CompleteMultipartUpload, published only if
// cond holds (ConditionalWriter); the upload is kept when it does not.
func (b *Backend) CompleteMultipartUploadIf(ctx context.Context, bucket, key, uploadID string, parts []backend.CompletePart, cond backend.Precondition) (backend.ObjectInfo, error) {
	dst, err := objectPath(bucket, key)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.loadUpload(bucket, key, uploadID)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	have, err := b.parts(bucket, uploadID)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	byNum := make(map[int]backend.PartInfo, len(have))
	for _, p := range have {
		byNum[p.PartNumber] = p
	}
	if len(parts) == 0 {
		return backend.ObjectInfo{}, fmt.Errorf("%w: no parts", backend.ErrInvalidPart)
	}
	var size int64
	etags := make([]string, len(parts))
	for i, cp := range parts {
		if i > 0 && cp.PartNumber <= parts[i-1].PartNumber {
			return backend.ObjectInfo{}, backend.ErrInvalidOrder
		}
		p, ok := byNum[cp.PartNumber]
		if !ok || strings.Trim(cp.ETag, `"`) != p.ETag {
			return backend.ObjectInfo{}, fmt.Errorf("%w: part %d", backend.ErrInvalidPart, cp.PartNumber)
		}
		if i < len(parts)-1 && p.Size < backend.MinPartSize {
			return backend.ObjectInfo{}, fmt.Errorf("%w: part %d", backend.ErrEntityTooSmall, cp.PartNumber)
		}
		size += p.Size
		etags[i] = p.ETag
	}
	pr := &partsReader{b: b, dir: uploadPath(bucket, uploadID), parts: parts}
	defer pr.Close()
	tmp, info, err := b.writeTemp(pr, size, backend.MultipartETag(etags), u.Meta)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	if err := b.publishIf(tmp, dst, bucket, key, cond); err != nil {
		return backend.ObjectInfo{}, err
	}
	b.root.RemoveAll(uploadPath(bucket, uploadID))
	info.Key = key
	return info, nil
}

// AbortMultipartUpload discards the staged upload.
func (b *Backend) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	if _, err := objectPath(bucket, key); err != nil {
		return err
	}
	if _, err := b.loadUpload(bucket, key, uploadID); err != nil {
		return err
	}
	if err := b.root.RemoveAll(uploadPath(bucket, uploadID)); err != nil {
		return fmt.Errorf("local backend: abort: %w", err)
	}
	return nil
}

// ListParts lists staged parts with numbers above after.
func (b *Backend) ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) (backend.ListPartsResult, error) {
	if _, err := b.loadUpload(bucket, key, uploadID); err != nil {
		return backend.ListPartsResult{}, err
	}
	all, err := b.parts(bucket, uploadID)
	if err != nil {
		return backend.ListPartsResult{}, err
	}
	var res backend.ListPartsResult
	for _, p := range all {
		if p.PartNumber <= after {
			continue
		}
		if len(res.Parts) >= max {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, p)
		res.NextPartNumberMarker = p.PartNumber
	}
	return res, nil
}

// ListMultipartUploads lists the bucket's staged uploads ordered by key and
// initiation.
func (b *Backend) ListMultipartUploads(ctx context.Context, bucket string, opts backend.ListUploadsOptions) (backend.ListUploadsResult, error) {
	if _, err := b.bucketDir(bucket); err != nil {
		return backend.ListUploadsResult{}, err
	}
	ents, _ := b.readDir(uploadsDir + "/" + bucket)
	var all []backend.UploadInfo
	for _, e := range ents {
		u, err := b.loadUpload(bucket, "", e.Name())
		if err != nil || !strings.HasPrefix(u.Key, opts.Prefix) {
			continue
		}
		all = append(all, backend.UploadInfo{Key: u.Key, UploadID: e.Name(), Initiated: u.Initiated})
	}
	slices.SortFunc(all, func(a, b backend.UploadInfo) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), a.Initiated.Compare(b.Initiated), cmp.Compare(a.UploadID, b.UploadID))
	})
	start, err := uploadsStart(all, opts)
	if err != nil {
		return backend.ListUploadsResult{}, err
	}
	var res backend.ListUploadsResult
	max := opts.MaxUploads
	lastCP := ""
	for _, u := range all[start:] {
		if opts.Delimiter != "" {
			rest := u.Key[len(opts.Prefix):]
			if i := strings.Index(rest, opts.Delimiter); i >= 0 {
				cp := opts.Prefix + rest[:i+len(opts.Delimiter)]
				if cp == lastCP {
					continue
				}
				if len(res.Uploads)+len(res.CommonPrefixes) >= max {
					res.IsTruncated = true
					break
				}
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				lastCP = cp
				res.NextKeyMarker, res.NextUploadIDMarker = cp, u.UploadID
				continue
			}
		}
		if len(res.Uploads)+len(res.CommonPrefixes) >= max {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, u)
		res.NextKeyMarker, res.NextUploadIDMarker = u.Key, u.UploadID
	}
	return res, nil
}

// uploadsStart is the index in all (sorted by key, then initiation) where a
// listing after the markers begins. Without a key marker the upload-id
// marker is ignored. Otherwise the listing starts after the upload-id
// marker, which must name an upload of the key marker or, when the key marker
// is not a key (a common prefix, or a key since completed), of the first key
// after it; without an upload-id marker it starts at the first key after the
// key marker.
func uploadsStart(all []backend.UploadInfo, opts backend.ListUploadsOptions) (int, error) {
	if opts.KeyMarker == "" {
		return 0, nil
	}
	after := len(all)
	for i, u := range all {
		if u.Key > opts.KeyMarker {
			after = i
			break
		}
	}
	if opts.UploadIDMarker == "" {
		return after, nil
	}
	if !validUploadID(opts.UploadIDMarker) {
		return 0, fmt.Errorf("%w: %s", backend.ErrInvalidUploadIDMarker, opts.UploadIDMarker)
	}
	for i, u := range all {
		if u.Key == opts.KeyMarker && u.UploadID == opts.UploadIDMarker {
			return i + 1, nil
		}
	}
	for i := after; i < len(all) && all[i].Key == all[after].Key; i++ {
		if all[i].UploadID == opts.UploadIDMarker {
			return i + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: %s", backend.ErrInvalidUploadIDMarker, opts.UploadIDMarker)
}
