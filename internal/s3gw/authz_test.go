package s3gw

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

func put(t *testing.T, c *awss3.Client, bucket, key, body string) error {
	t.Helper()
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	return err
}

func getString(t *testing.T, c *awss3.Client, bucket, key string) (string, error) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func list(c *awss3.Client, bucket, prefix string) ([]string, error) {
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(bucket), Delimiter: aws.String("/")}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	out, err := c.ListObjectsV2(context.Background(), in)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	for _, p := range out.CommonPrefixes {
		keys = append(keys, aws.ToString(p.Prefix))
	}
	return keys, nil
}

// TestHomeDirectories: one shared role whose policy uses ${aws:username}
// gives each user a private prefix nobody else on the role can list, read
// or write.
func TestHomeDirectories(t *testing.T) {
	e := newEnv(t)
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	require.NoError(t, put(t, admin, "data", "shared/readme.txt", "shared data"))
	alice := e.client(e.creds("alice", roleARNs.analyst, ""))
	bob := e.client(e.creds("bob", roleARNs.analyst, ""))

	// Each writes and reads their own home.
	require.NoError(t, put(t, alice, "data", "home/alice/notes.txt", "alice's notes"))
	require.NoError(t, put(t, bob, "data", "home/bob/notes.txt", "bob's notes"))
	got, err := getString(t, alice, "data", "home/alice/notes.txt")
	require.NoError(t, err)
	require.Equal(t, "alice's notes", got)

	// Nobody reads, writes, deletes or lists another's home.
	_, err = getString(t, bob, "data", "home/alice/notes.txt")
	require.Equal(t, "AccessDenied", apiCode(err))
	require.Equal(t, "AccessDenied", apiCode(put(t, bob, "data", "home/alice/planted.txt", "x")))
	_, err = bob.DeleteObject(context.Background(), &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("home/alice/notes.txt")})
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = list(bob, "data", "home/alice/")
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = bob.CopyObject(context.Background(), &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("home/bob/stolen"),
		CopySource: aws.String("data/home/alice/notes.txt")})
	require.Equal(t, "AccessDenied", apiCode(err), "copy needs s3:GetObject on the source")
	_, err = bob.CreateMultipartUpload(context.Background(), &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("home/alice/mp")})
	require.Equal(t, "AccessDenied", apiCode(err))
	got, err = getString(t, alice, "data", "home/alice/notes.txt")
	require.NoError(t, err)
	require.Equal(t, "alice's notes", got, "bob's attempts changed nothing")

	// Listing: own home, the home/ level and the root are allowed; the
	// whole bucket without a prefix is not (s3:prefix is absent).
	keys, err := list(alice, "data", "home/alice/")
	require.NoError(t, err)
	require.Equal(t, []string{"home/alice/notes.txt"}, keys)
	keys, err = list(alice, "data", "home/")
	require.NoError(t, err)
	require.Equal(t, []string{"home/alice/", "home/bob/"}, keys)
	_, err = alice.ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String("data")})
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = list(alice, "data", "home/bob/")
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = list(alice, "data", "home/alice") // no trailing slash: would also match home/alice-evil/...
	require.Equal(t, "AccessDenied", apiCode(err))

	// Shared prefix: read-only.
	got, err = getString(t, bob, "data", "shared/readme.txt")
	require.NoError(t, err)
	require.Equal(t, "shared data", got)
	require.Equal(t, "AccessDenied", apiCode(put(t, bob, "data", "shared/readme.txt", "defaced")))
	// Another bucket: nothing.
	require.Equal(t, "AccessDenied", apiCode(put(t, alice, "other", "home/alice/x", "x")))

	// DeleteObjects is authorized per key.
	require.NoError(t, put(t, bob, "data", "home/bob/a", "a"))
	del, err := bob.DeleteObjects(context.Background(), &awss3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: deleteOf(
		"home/bob/a", "home/alice/notes.txt")})
	require.NoError(t, err)
	require.Len(t, del.Deleted, 1)
	require.Len(t, del.Errors, 1)
	require.Equal(t, "home/alice/notes.txt", aws.ToString(del.Errors[0].Key))
	require.Equal(t, "AccessDenied", aws.ToString(del.Errors[0].Code))
	_, err = getString(t, alice, "data", "home/alice/notes.txt")
	require.NoError(t, err)

	// Every denial is audited with the user and the reason.
	var denied []audit.Event
	for _, ev := range e.audit.all() {
		if ev.Code == audit.CodeS3Denied && ev.Actor.User == "bob" {
			denied = append(denied, ev)
		}
	}
	require.NotEmpty(t, denied)
	require.Equal(t, audit.Deny, denied[0].Decision)
	require.Contains(t, denied[0].Reason, "no statement allows s3:GetObject")
	ct := denied[0].Details["cloudTrail"].(map[string]any)
	require.Equal(t, "AccessDenied", ct["errorCode"])
	require.Equal(t, "bob", ct["userIdentity"].(map[string]any)["sourceIdentity"])
}

// TestSessionPolicyNarrows: the session policy intersects the role's.
func TestSessionPolicyNarrows(t *testing.T) {
	e := newEnv(t)
	readOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"*"}]}`
	alice := e.client(e.creds("alice", roleARNs.analyst, readOnly))
	require.Equal(t, "AccessDenied", apiCode(put(t, alice, "data", "home/alice/x", "x")), "role allows, session policy does not")
	full := e.client(e.creds("alice", roleARNs.analyst, ""))
	require.NoError(t, put(t, full, "data", "home/alice/x", "x"))
	got, err := getString(t, alice, "data", "home/alice/x")
	require.NoError(t, err)
	require.Equal(t, "x", got)
	// The session policy cannot widen the role.
	wide := e.client(e.creds("alice", roleARNs.analyst, adminPolicy))
	require.Equal(t, "AccessDenied", apiCode(put(t, wide, "other", "k", "x")))
}

// TestAccessDeniedXML checks the error document byte layout clients parse.
func TestAccessDeniedXML(t *testing.T) {
	e := newEnv(t)
	bob := e.creds("bob", roleARNs.analyst, "")
	resp := e.signed(t, bob, http.MethodGet, "/data/home/alice/notes.txt", nil, nil)
	defer resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "application/xml", resp.Header.Get("Content-Type"))
	body, _ := io.ReadAll(resp.Body)
	require.True(t, strings.HasPrefix(string(body), `<?xml version="1.0" encoding="UTF-8"?>`+"\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><Resource>/data/home/alice/notes.txt</Resource><RequestId>"), string(body))
	var doc errorXML
	require.NoError(t, xml.Unmarshal(body, &doc))
	require.Equal(t, resp.Header.Get("x-amz-request-id"), doc.RequestID)
}

func deleteOf(keys ...string) *types.Delete {
	d := &types.Delete{}
	for _, k := range keys {
		d.Objects = append(d.Objects, types.ObjectIdentifier{Key: aws.String(k)})
	}
	return d
}
