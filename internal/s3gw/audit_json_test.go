package s3gw

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// TestCloudTrailAppendJSON: the hand-written encoding of the CloudTrail
// record is byte for byte what encoding/json writes for the same record, for
// every shape the gateway builds (identified, anonymous, refused with an
// error, with mounts, resources and non-string request parameters, and
// strings that need escaping).
func TestCloudTrailAppendJSON(t *testing.T) {
	claims := &credentials.Claims{PrincipalID: "u-1", UserName: "alice@example.com", SessionID: "s-1",
		RoleARN: "arn:aws:iam::000000000000:role/team/data", RoleSessionName: "alice", AssumedRoleID: "AROAX:alice",
		IssuedAt: time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC)}
	base := func() *cloudTrailRecord {
		return &cloudTrailRecord{EventVersion: "1.09", EventTime: "2026-12-08T01:02:03Z", EventSource: "s3.amazonaws.com",
			EventName: "GetObject", AWSRegion: "us-east-1", SourceIPAddress: "127.0.0.1", UserAgent: "aws-cli/2 <x> & \"q\"",
			RequestParameters: map[string]any{"bucketName": "b", "key": "k/ü\u2028", "Host": "h:1"},
			AdditionalEventData: ctAdditionalEventData{SignatureVersion: "SigV4", AuthenticationMethod: "AuthHeader",
				BytesTransferredIn: 0, BytesTransferredOut: 1024},
			RequestID: "req-1", ReadOnly: true, EventType: "AwsApiCall", EventCategory: "Data", BytesTransferred: 1024}
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *cloudTrailRecord)
	}{
		{"identified", func(c *cloudTrailRecord) { c.UserIdentity = userIdentity(claims, "ASIAX") }},
		{"anonymous", func(c *cloudTrailRecord) { c.UserIdentity = ctUnknownIdentity }},
		{"unknown key", func(c *cloudTrailRecord) { c.UserIdentity = &ctUserIdentity{Type: "Unknown", AccessKeyID: "AKIA"} }},
		{"nil identity and parameters", func(c *cloudTrailRecord) { c.UserIdentity, c.RequestParameters = nil, nil }},
		{"refused", func(c *cloudTrailRecord) {
			c.UserIdentity = userIdentity(claims, "ASIAX")
			c.ErrorCode, c.ErrorMessage = "AccessDenied", "no <statement> allows s3:GetObject"
			c.ReadOnly, c.ManagementEvent = false, true
		}},
		{"mounts, resources and typed parameters", func(c *cloudTrailRecord) {
			c.UserIdentity = userIdentity(claims, "ASIAX")
			c.AdditionalEventData.Mounts = []ctMount{{ID: "m1", Bucket: "b", Prefix: "p/", RoleARN: "arn:r"}}
			c.Resources = []ctResource{{Type: "AWS::S3::Object", ARN: "arn:aws:s3:::b/k"}, {Type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::b"}}
			c.RequestParameters["max-keys"] = 1000
			c.RequestParameters["delete"] = map[string]any{"quiet": true, "objects": []string{"a", "b"}}
			c.RequestParameters["nothing"] = nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mutate(c)
			want, err := json.Marshal(c)
			require.NoError(t, err)
			got, err := c.AppendJSON([]byte("prefix"))
			require.NoError(t, err)
			require.Equal(t, "prefix"+string(want), string(got))
		})
	}
}

// BenchmarkCloudTrailEncode compares encoding the record of an identified
// GET with encoding/json and with AppendJSON (docs/benchmarks.md).
func BenchmarkCloudTrailEncode(b *testing.B) {
	claims := &credentials.Claims{PrincipalID: "u-1", UserName: "alice@example.com", SessionID: "s-1",
		RoleARN: "arn:aws:iam::000000000000:role/data", RoleSessionName: "alice", AssumedRoleID: "AROAX:alice"}
	c := &cloudTrailRecord{EventVersion: "1.09", EventTime: "2026-12-08T01:02:03Z", EventSource: "s3.amazonaws.com",
		EventName: "GetObject", AWSRegion: "us-east-1", SourceIPAddress: "127.0.0.1", UserAgent: "aws-sdk-go-v2/1.48.0",
		UserIdentity:        userIdentity(claims, "ASIAXXXXXXXXXXXXXXXX"),
		RequestParameters:   map[string]any{"bucketName": "bench", "key": "obj/00042", "Host": "127.0.0.1:9000"},
		AdditionalEventData: ctAdditionalEventData{SignatureVersion: "SigV4", AuthenticationMethod: "AuthHeader", BytesTransferredOut: 1024},
		Resources:           []ctResource{{Type: "AWS::S3::Object", ARN: "arn:aws:s3:::bench/obj/00042"}},
		RequestID:           "req-1", ReadOnly: true, EventType: "AwsApiCall", EventCategory: "Data", BytesTransferred: 1024}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			var err error
			if buf, err = c.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
