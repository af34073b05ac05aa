package s3gw

import (
	"io"
	"strings"

	"context"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestMounts: data/hr/ is mounted with the hr-reader role. alice (analyst,
// entitled to hr-reader) reads it with her analyst credentials; bob (same
// role, not entitled) cannot.
func TestMounts(t *testing.T) {
	e := newEnv(t, envOptions{
		mounts:   []Mount{{ID: "hr", Bucket: "data", Prefix: "hr/", RoleARN: roleARNs.hr}},
		entitled: map[string][]string{roleARNs.hr: {"alice"}},
	})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	require.Error(t, put(t, admin, "data", "hr/salaries.csv", "x"), "root is not entitled to the hr mount role either")
	_, err := e.backend.PutObject(context.Background(), "data", "hr/salaries.csv", stringsReader("name,salary\n"), 12, mdNone)
	require.NoError(t, err)

	alice := e.client(e.creds("alice", roleARNs.analyst, ""))
	bob := e.client(e.creds("bob", roleARNs.analyst, ""))

	got, err := getString(t, alice, "data", "hr/salaries.csv")
	require.NoError(t, err)
	require.Equal(t, "name,salary\n", got)
	keys, err := list(alice, "data", "hr/")
	require.NoError(t, err)
	require.Equal(t, []string{"hr/salaries.csv"}, keys)
	// The mount role is read-only; her own home still works as analyst.
	require.Equal(t, "AccessDenied", apiCode(put(t, alice, "data", "hr/new.csv", "x")))
	require.NoError(t, put(t, alice, "data", "home/alice/x", "x"))

	_, err = getString(t, bob, "data", "hr/salaries.csv")
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = list(bob, "data", "hr/")
	require.Equal(t, "AccessDenied", apiCode(err))

	// A session policy still narrows what the mount role allows.
	narrow := e.client(e.creds("alice", roleARNs.analyst,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::data/home/*"}]}`))
	_, err = narrow.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("hr/salaries.csv")})
	require.Equal(t, "AccessDenied", apiCode(err))

	// The audit event names the session (analyst/alice) and the mount role.
	var ok bool
	for _, ev := range e.audit.find("GetObject") {
		if ev.Actor.User != "alice" || ev.Code != audit.CodeS3Access {
			continue
		}
		ct := ev.Details["cloudTrail"].(map[string]any)
		require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/analyst/alice", ct["userIdentity"].(map[string]any)["arn"])
		ms := ct["additionalEventData"].(map[string]any)["mounts"].([]any)
		require.Equal(t, roleARNs.hr, ms[0].(map[string]any)["roleArn"])
		ok = true
	}
	require.True(t, ok)
	var denied bool
	for _, ev := range e.audit.find("GetObject") {
		if ev.Actor.User == "bob" && ev.Code == audit.CodeS3Denied {
			require.Contains(t, ev.Reason, "not entitled to role "+roleARNs.hr)
			denied = true
		}
	}
	require.True(t, denied)
}

func TestMountValidate(t *testing.T) {
	sm := &StaticMounts{}
	require.Error(t, sm.Set([]Mount{{ID: "x", Bucket: "data", Prefix: "hr", RoleARN: roleARNs.hr}}))
	require.Error(t, sm.Set([]Mount{{ID: "x", Bucket: "data", Prefix: "../", RoleARN: roleARNs.hr}}))
	require.Error(t, sm.Set([]Mount{{ID: "x", Bucket: "Data", Prefix: "hr/", RoleARN: "arn:aws:iam::1:user/x"}}))
	require.NoError(t, sm.Set([]Mount{{ID: "a", Bucket: "data", Prefix: "hr/", RoleARN: roleARNs.hr},
		{ID: "b", Bucket: "data", Prefix: "hr/restricted/", RoleARN: roleARNs.admin}}))
	m, ok, _ := sm.MountFor(context.Background(), "data", "hr/restricted/x")
	require.True(t, ok)
	require.Equal(t, "b", m.ID, "longest prefix wins")
	_, ok, _ = sm.MountFor(context.Background(), "data", "hrx/y")
	require.False(t, ok)
}

var mdNone = backend.Metadata{}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
