package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/backendtest"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

func newLocal(t *testing.T) (*Backend, string) {
	t.Helper()
	b, err := Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	require.NoError(t, b.CreateBucket(context.Background(), "test-bucket"))
	return b, "test-bucket"
}

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) (backend.Backend, string) { return newLocal(t) })
}

func TestLayoutIsPlainFiles(t *testing.T) {
	b, bucket := newLocal(t)
	ctx := context.Background()
	_, err := b.PutObject(ctx, bucket, "tables/t1/part-0.parquet", strings.NewReader("PAR1"), 4, backend.Metadata{})
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(b.Dir(), bucket, "tables", "t1", "part-0.parquet"))
	require.NoError(t, err)
	require.Equal(t, "PAR1", string(data))
	// No temporary files are left behind.
	ents, err := os.ReadDir(filepath.Join(b.Dir(), tmpDir))
	require.NoError(t, err)
	require.Empty(t, ents)
}

func TestSymlinkCannotEscape(t *testing.T) {
	b, bucket := newLocal(t)
	ctx := context.Background()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("top secret"), 0o600))
	// An operator (or an attacker with file-system access) plants a link.
	require.NoError(t, os.Symlink(outside, filepath.Join(b.Dir(), bucket, "link")))
	_, _, err := b.GetObject(ctx, bucket, "link/secret", nil)
	require.Error(t, err)
	_, err = b.PutObject(ctx, bucket, "link/planted", strings.NewReader("x"), 1, backend.Metadata{})
	require.Error(t, err)
	_, err = os.Stat(filepath.Join(outside, "planted"))
	require.True(t, os.IsNotExist(err))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(b.Dir(), bucket, "passwd")))
	_, _, err = b.GetObject(ctx, bucket, "passwd", nil)
	require.Error(t, err)
}

func TestDirectoryMarkersAndConflicts(t *testing.T) {
	b, bucket := newLocal(t)
	ctx := context.Background()
	_, err := b.PutObject(ctx, bucket, "dir/", strings.NewReader(""), 0, backend.Metadata{})
	require.NoError(t, err)
	_, err = b.PutObject(ctx, bucket, "dir/file", strings.NewReader("x"), 1, backend.Metadata{})
	require.NoError(t, err)
	res, err := b.ListObjects(ctx, bucket, backend.ListOptions{MaxKeys: 100})
	require.NoError(t, err)
	require.Len(t, res.Objects, 2)
	require.Equal(t, "dir/", res.Objects[0].Key)
	require.Equal(t, "dir/file", res.Objects[1].Key)
	_, err = b.HeadObject(ctx, bucket, "dir/")
	require.NoError(t, err)

	// "dir/file" is a file: "dir/file/x" cannot be stored, nor can "dir".
	_, err = b.PutObject(ctx, bucket, "dir/file/x", strings.NewReader("x"), 1, backend.Metadata{})
	require.ErrorIs(t, err, backend.ErrKeyConflict)
	_, err = b.PutObject(ctx, bucket, "dir", strings.NewReader("x"), 1, backend.Metadata{})
	require.ErrorIs(t, err, backend.ErrKeyConflict)
	// The reserved marker name is not a key.
	_, err = b.PutObject(ctx, bucket, "dir/.gatehouse-dir", strings.NewReader("x"), 1, backend.Metadata{})
	require.ErrorIs(t, err, s3name.ErrInvalidKey)
}

func FuzzValidateKey(f *testing.F) {
	for _, k := range backendtest.BadKeys {
		f.Add(k)
	}
	f.Add("a/b/c.txt")
	f.Fuzz(func(t *testing.T, key string) {
		p, err := objectPath("bucket", key)
		if err != nil {
			return
		}
		// A valid key maps inside the bucket, with no dot segments.
		clean := filepath.ToSlash(filepath.Clean(p))
		if !strings.HasPrefix(clean, "bucket/") {
			t.Fatalf("key %q maps to %q outside the bucket", key, p)
		}
		if strings.TrimSuffix(p, "/"+markerName) != strings.TrimSuffix(clean, "/"+markerName) && !strings.HasSuffix(key, "/") {
			t.Fatalf("key %q maps to an unclean path %q", key, p)
		}
		if strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("key %q accepted", key)
		}
	})
}
