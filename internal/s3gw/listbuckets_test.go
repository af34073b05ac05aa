package s3gw

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestListBucketsShowsTheBucketsTheCallerMayList (issue 12 §4, "bare aws s3
// ls is AccessDenied"): without s3:ListAllMyBuckets, ListBuckets answers
// the buckets the caller may list at their root, each decided by the
// caller's role ∩ session policy, and records which it showed; a caller
// who may list none is still refused, and s3:ListAllMyBuckets still shows
// every bucket.
func TestListBucketsShowsTheBucketsTheCallerMayList(t *testing.T) {
	listOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`
	cases := []struct {
		name, user, role, session string
		want                      []string // nil: AccessDenied
	}{
		{"role lists data's root, session policy drops ListAllMyBuckets", "alice", roleARNs.analyst, listOnly, []string{"data"}},
		{"ListAllMyBuckets shows every bucket", "alice", roleARNs.analyst, "", []string{"data", "other"}},
		{"no bucket listable at its root", "bob", roleARNs.hr, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.client(e.creds(tc.user, tc.role, tc.session))
			out, err := c.ListBuckets(context.Background(), &awss3.ListBucketsInput{})
			evs := e.audit.find("ListBuckets")
			require.Len(t, evs, 1)
			if tc.want == nil {
				require.Equal(t, "AccessDenied", apiCode(err))
				require.Equal(t, audit.CodeS3Denied, evs[0].Code)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, b := range out.Buckets {
				names = append(names, aws.ToString(b.Name))
			}
			require.Equal(t, tc.want, names)
			require.Equal(t, audit.CodeS3Access, evs[0].Code)
			require.Equal(t, tc.user, evs[0].Actor.User)
			ct := evs[0].Details["cloudTrail"].(map[string]any)
			shown := ct["requestParameters"].(map[string]any)["visibleBuckets"]
			if tc.session == "" {
				require.Nil(t, shown, "every bucket: nothing filtered")
				return
			}
			require.Equal(t, []any{"data"}, shown)
		})
	}
}
