package decision_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Directory sizes of the scale benchmarks (issue 12 §1's goals).
const (
	benchRoles   = 10000
	benchMembers = 100000
)

// scaleStack is a stack whose directory has benchRoles roles (each trusted
// by its own group, plus the team role) and a group "big" of benchMembers
// users, alice among them.
func scaleStack(b *testing.B) (*stack, *store.User) {
	b.Helper()
	s := newStack(b)
	ctx := context.Background()
	s.role("own", trustForGroup("nobody"), allowAll)
	s.role("team", trustForGroup("big"), allowTeam)
	for i := range benchRoles {
		r := &store.Role{Name: fmt.Sprintf("r%05d", i), TrustPolicy: trustForGroup(fmt.Sprintf("g%05d", i)),
			PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: allowAll}}}
		require.NoError(b, s.st.CreateRole(ctx, r))
	}
	big := &store.Group{DisplayName: "big"}
	var alice *store.User
	for i := range benchMembers {
		u := &store.User{UserName: fmt.Sprintf("u%06d", i), Active: true}
		require.NoError(b, s.st.CreateUser(ctx, u))
		big.Members = append(big.Members, store.Member{ID: u.ID, Type: store.MemberUser})
		if i == 0 {
			alice = u
		}
	}
	require.NoError(b, s.st.CreateGroup(ctx, big))
	return s, alice
}

// BenchmarkScale measures, at benchRoles roles and a benchMembers-member
// group the caller belongs to: the role picker (Pickable, warm) and a GET
// under a mount over loopback HTTP with the SDK (entitlement warm), beside
// the same GET as the session's own role (the peer); it logs
// the index builds, paid once per change or TTL rather than per request. Run with -benchtime=200x; setup
// generates the directory once.
func BenchmarkScale(b *testing.B) {
	s, alice := scaleStack(b)
	ctx := context.Background()
	pr := decision.Principal{UserID: alice.ID, UserName: alice.UserName, Groups: []string{"big"}}
	// The first call after a change rebuilds the trust index from every
	// role: logged, since it is paid once per change, not per request.
	start := time.Now()
	_, err := s.dp.Pickable(ctx, decision.PickRequest{Principal: pr})
	require.NoError(b, err)
	b.Logf("trust index built over %d roles, compiling each, in %s", benchRoles+2, time.Since(start))
	for _, why := range []string{"a directory change", "the TTL"} {
		if why == "the TTL" {
			s.advance(decision.DefaultTTL)
		} else {
			s.dp.Changed()
		}
		start = time.Now()
		_, err = s.dp.Pickable(ctx, decision.PickRequest{Principal: pr})
		require.NoError(b, err)
		b.Logf("trust index rebuilt after %s (roles already compiled) in %s", why, time.Since(start))
	}
	b.Run("picker", func(b *testing.B) {
		for b.Loop() {
			roles, err := s.dp.Pickable(ctx, decision.PickRequest{Principal: pr})
			if err != nil || len(roles) != 1 {
				b.Fatalf("picker: %d roles, %v", len(roles), err)
			}
		}
	})
	c := s.client(alice, ownRole)
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("team/a.csv"),
		Body: bytes.NewReader([]byte("a,b\n"))})
	require.NoError(b, err)
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("own/a.csv"),
		Body: bytes.NewReader([]byte("a,b\n"))})
	require.NoError(b, err)
	key := "team/a.csv"
	get := func() {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, out.Body)
		out.Body.Close()
	}
	b.Run("get-under-mount", func(b *testing.B) {
		get() // warm: entitlement and index are built once per change
		for b.Loop() {
			get()
		}
	})
	key = "own/a.csv" // the peer: the same GET as the session's own role
	b.Run("get-own-role", func(b *testing.B) {
		for b.Loop() {
			get()
		}
	})
}
