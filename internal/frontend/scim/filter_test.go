package scim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func sampleUserDoc() map[string]any {
	u := &store.User{
		ID: "2819c223-7f76-453a-919d-413861904646", UserName: "Bjensen@Example.com",
		ExternalID: "bjensen", DisplayName: "Babs Jensen", GivenName: "Barbara", FamilyName: "Jensen",
		Title: "Tour Guide", Active: true, Revision: 3,
		Emails: []store.Email{
			{Value: "bjensen@example.com", Type: "work", Primary: true},
			{Value: "babs@jensen.org", Type: "home"},
		},
		Attributes: map[string][]string{"department": {"Tour Operations"}, "manager": {"m-1"}, "region": {"EU", "US"}},
		CreatedAt:  time.Date(2011, 8, 1, 18, 29, 49, 0, time.UTC),
		UpdatedAt:  time.Date(2011, 8, 1, 21, 32, 44, 0, time.UTC),
	}
	return userToDoc(u, []groupRef{{ID: "g-1", Name: "Tour Guides", Direct: true}, {ID: "g-2", Name: "Staff"}}, baseURL)
}

func TestFilterEval(t *testing.T) {
	doc := sampleUserDoc()
	tests := []struct {
		filter string
		want   bool
	}{
		{`userName eq "bjensen@example.com"`, true}, // caseExact=false
		{`USERNAME Eq "BJENSEN@EXAMPLE.COM"`, true}, // names and operators case-insensitive
		{`userName ne "bjensen@example.com"`, false},
		{`userName co "jensen"`, true},
		{`userName sw "bj"`, true},
		{`userName ew ".com"`, true},
		{`userName ew ".org"`, false},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false}, // id is caseExact
		{`externalId eq "bjensen"`, true},
		{`externalId eq "BJENSEN"`, false},
		{`name.familyName co "ens"`, true},
		{`name.givenName pr`, true},
		{`title pr`, true},
		{`nickName pr`, false}, // accepted attribute, never stored
		{`active eq true`, true},
		{`active eq false`, false},
		{`active ne false`, true},
		{`emails co "example.com"`, true}, // multi-valued complex: value sub-attribute
		{`emails.value ew "jensen.org"`, true},
		{`emails.type eq "work"`, true},
		{`emails.type ne "other"`, true},
		{`emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "work"].value eq "bjensen@example.com"`, true},
		{`emails[not (type eq "work")].value ew ".org"`, true},
		{`emails[primary eq true].value sw "bjensen"`, true},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified lt "2011-05-13T04:42:34Z"`, false},
		{`meta.created ge "2011-08-01T18:29:49Z"`, true},
		{`meta.created le "2011-08-01T20:29:49+02:00"`, true},
		{`meta.created gt "2011-08-01T20:29:49+02:00"`, false},
		{`meta.resourceType eq "User"`, true},
		{`title gt "A"`, true},
		{`title lt "tour guide"`, false},
		{`title le "tour guide"`, true},
		{`displayName eq null`, false},
		{`nickName eq null`, true},
		{`title pr and userName sw "x" or active eq true`, true}, // and binds tighter
		{`title pr and (userName sw "x" or active eq false)`, false},
		{`not (userName sw "x") and active eq true`, true},
		{`userName sw "x" or userName sw "y" or userName sw "b"`, true},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "BJ"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations"`, true},
		{`department eq "Tour Operations"`, true}, // unqualified extension attribute
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m-1"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m-1"`, true},
		{`urn:gatehouse:params:scim:schemas:extension:2.0:User:attributes.region eq "EU"`, true},
		{`urn:gatehouse:params:scim:schemas:extension:2.0:User:attributes.region eq "eu"`, false}, // caseExact
		{`urn:gatehouse:params:scim:schemas:extension:2.0:User:attributes.team pr`, false},
		{`groups.display eq "staff"`, true},
		{`groups[type eq "indirect"].display eq "Staff"`, true},
		{`groups[type eq "direct"].value eq "g-2"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := parseFilter(tt.filter)
			require.NoError(t, err)
			require.NoError(t, compileFilter(userType, nil, f))
			require.Equal(t, tt.want, eval(f, doc))
		})
	}
}

func TestFilterErrors(t *testing.T) {
	for _, f := range []string{
		``,
		`userName`,
		`userName eq`,
		`userName eq bjensen`, // unquoted string
		`userName xx "a"`,
		`userName eq "a" and`,
		`(userName eq "a"`,
		`userName eq "a")`,
		`emails[type eq "work"`,
		`emails[type eq "work"]]`,
		`"userName" eq "a"`,
		`userName eq "unterminated`,
		`userName eq "bad \q escape"`,
		`nosuch eq "a"`,
		`name.nosuch eq "a"`,
		`urn:example:unknown:User:userName eq "a"`,
		`active gt true`, // ordering on booleans (RFC 7644 §3.4.2.2)
		`active co "t"`,
		`active eq "yes"`,
		`userName eq 12`,
		`meta.created gt "yesterday"`,
		`meta.created co "2011"`,
		`title pr pr`,
		`emails[value eq "a"][type eq "b"]`,
		`emails[emails[type eq "a"] ]`,
		`not userName eq "a"`,
		`userName gt null`,
		`name eq "x"`,
	} {
		t.Run(f, func(t *testing.T) {
			n, err := parseFilter(f)
			if err == nil {
				err = compileFilter(userType, nil, n)
			}
			require.Error(t, err)
		})
	}
}

func TestFilterGroups(t *testing.T) {
	g := &store.Group{ID: "g-1", DisplayName: "Engineering", ExternalID: "ext-1",
		Members: []store.Member{{ID: "u-1", Type: store.MemberUser}, {ID: "g-9", Type: store.MemberGroup}}}
	doc := groupToDoc(g, nil, baseURL)
	for f, want := range map[string]bool{
		`displayName eq "engineering"`:                true,
		`members[value eq "u-1"]`:                     true,
		`members[value eq "u-1" and type eq "Group"]`: false,
		`members.value eq "g-9"`:                      true,
		`members pr`:                                  true,
		`externalId eq "ext-1"`:                       true,
	} {
		n, err := parseFilter(f)
		require.NoError(t, err, f)
		require.NoError(t, compileFilter(groupType, nil, n), f)
		require.Equal(t, want, eval(n, doc), f)
	}
	n, err := parseFilter(`userName eq "x"`)
	require.NoError(t, err)
	require.Error(t, compileFilter(groupType, nil, n))
}

func TestFilterDepthLimit(t *testing.T) {
	deep := ""
	for range 100 {
		deep += "("
	}
	deep += `userName eq "a"`
	for range 100 {
		deep += ")"
	}
	_, err := parseFilter(deep)
	require.ErrorContains(t, err, "nested too deeply")
}

func TestParsePath(t *testing.T) {
	ok := []string{
		`active`,
		`name.givenName`,
		`emails[type eq "work"].value`,
		`emails[type eq "work"]`,
		`members[value eq "2819c223-7f76-453a-919d-413861904646"]`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`,
		`urn:gatehouse:params:scim:schemas:extension:2.0:User:attributes.region`,
	}
	for _, s := range ok {
		rp, err := parsePath(s)
		require.NoError(t, err, s)
		_, err = resolveRawPath(userType, rp)
		if s[0] == 'm' {
			_, err = resolveRawPath(groupType, rp)
		}
		require.NoError(t, err, s)
	}
	bad := []string{
		``, `emails[type eq "work"`, `emails[type eq "work"].value.x`, `name[givenName eq "x"]`,
		`nosuch`, `emails[type eq "work"] extra`, `title[value eq "x"]`, `urn:x:y`, `a b`,
		`name.givenName.x`, `urn:ietf:params:scim:schemas:core:2.0:User`,
	}
	for _, s := range bad {
		rp, err := parsePath(s)
		if err == nil {
			_, err = resolveRawPath(userType, rp)
		}
		require.Error(t, err, s)
	}
}

// FuzzParseFilter checks that no input makes the filter or path parser,
// the compiler or the evaluator panic.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "bjensen"`,
		`emails[type eq "work" and value co "@example.com"] or not (active eq false)`,
		`meta.lastModified gt "2011-05-13T04:42:34Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr`,
		`emails[type eq "work"].value`,
		`((((`, `"\u0000"`, `a[b[c]]`, `x eq 1e999`, `title eq -0.5`,
	} {
		f.Add(s)
	}
	doc := sampleUserDoc()
	gdoc := groupToDoc(&store.Group{ID: "g", DisplayName: "G", Members: []store.Member{{ID: "u", Type: store.MemberUser}}}, nil, baseURL)
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseFilter(s); err == nil {
			if compileFilter(userType, nil, n) == nil {
				eval(n, doc)
			}
		}
		if n, err := parseFilter(s); err == nil {
			if compileFilter(groupType, nil, n) == nil {
				eval(n, gdoc)
			}
		}
		if rp, err := parsePath(s); err == nil {
			if p, err := resolveRawPath(userType, rp); err == nil {
				d := sampleUserDoc()
				for _, op := range []string{"add", "replace", "remove"} {
					_ = applyOp(d, patchOp{op: op, path: p, value: "x"})
				}
			}
		}
	})
}
