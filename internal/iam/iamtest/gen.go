// Package iamtest generates random IAM policies and requests from a seed,
// for property tests, fuzzing and the oracle comparison, and reads the
// data-driven case files of internal/iam/testdata/cases (LoadCases), which
// the evaluator, `policy simulate` and the oracle all run. It is test
// support: no production code imports it.
//
// The generated policies use real S3 actions, S3 ARNs and global condition
// keys with values of the right type, so that an external simulator that
// validates its input (the oracle) accepts them.
package iamtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Doc is a named policy document.
type Doc struct {
	Name   string         `json:"name"`
	Policy map[string]any `json:"policy"`
}

// Case is one generated scenario: policies in each layer and one request.
type Case struct {
	Seed      uint64              `json:"seed"`
	Identity  []Doc               `json:"identity"`
	Session   map[string]any      `json:"session,omitempty"`
	Boundary  []Doc               `json:"boundary,omitempty"`
	Action    string              `json:"action"`
	Resource  string              `json:"resource"`
	Principal string              `json:"principal"`
	Context   map[string][]string `json:"context"`
	// Multi lists the context keys that are multivalued (sent as lists even
	// with one value).
	Multi []string `json:"multi,omitempty"`
}

// JSON returns the policy document as JSON.
func (d Doc) JSON() []byte {
	b, err := json.Marshal(d.Policy)
	if err != nil {
		panic(err)
	}
	return b
}

type keySpec struct {
	name   string
	kind   string // string, numeric, date, bool, ip, arn
	multi  bool
	policy []any    // candidate policy values
	ctx    []string // candidate context values
}

var keys = []keySpec{
	{name: "aws:username", kind: "string", policy: []any{"alice", "bob", "Alice", "al*", "?ob", "${aws:PrincipalTag/team}", "${aws:PrincipalTag/team, 'alice'}"}, ctx: []string{"alice", "bob", "ALICE"}},
	{name: "aws:PrincipalTag/team", kind: "string", policy: []any{"data", "ops", "DATA", "d*", "${aws:username}"}, ctx: []string{"data", "ops", "Data", "alice"}},
	{name: "aws:SourceIp", kind: "ip", policy: []any{"10.0.0.0/8", "192.168.1.0/24", "10.1.2.3", "2001:db8::/32", "10.1.2.3/32"}, ctx: []string{"10.1.2.3", "192.168.1.7", "172.16.0.1", "2001:db8::1"}},
	{name: "aws:SecureTransport", kind: "bool", policy: []any{"true", "false", true, false}, ctx: []string{"true", "false"}},
	{name: "aws:CurrentTime", kind: "date", policy: []any{"2024-01-01T00:00:00Z", "2025-06-01T00:00:00Z", "2030-01-01T00:00:00Z", "2024-06-01T00:00:00Z"}, ctx: []string{"2024-06-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
	{name: "aws:MultiFactorAuthAge", kind: "numeric", policy: []any{"0", "3600", "86400", 3600}, ctx: []string{"100", "3600", "100000"}},
	{name: "aws:TagKeys", kind: "string", multi: true, policy: []any{"a", "b", "c", "a*"}, ctx: []string{"a", "b", "c", "d"}},
	{name: "aws:PrincipalArn", kind: "arn", policy: []any{"arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/*", "arn:aws:iam::*:user/b?b", "arn:aws:iam::123456789012:user/${aws:username}"}},
}

var operators = map[string][]string{
	"string":  {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike"},
	"numeric": {"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals"},
	"date":    {"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"},
	"bool":    {"Bool"},
	"ip":      {"IpAddress", "NotIpAddress"},
	"arn":     {"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"},
}

var (
	actionPatterns = []string{"s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "s3:Get*", "s3:*Object", "s3:*", "*", "s3:List*", "s3:Get?bject", "S3:getobject", "s3:Put*"}
	requestActions = []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
	objectPatterns = []string{
		"*", "arn:aws:s3:::bucket-a/*", "arn:aws:s3:::bucket-?/*", "arn:aws:s3:::bucket-a/home/${aws:username}/*",
		"arn:aws:s3:::*/public/*", "arn:aws:s3:::bucket-b/*", "arn:aws:s3:::bucket-a/${aws:PrincipalTag/team, 'public'}/*",
		"arn:aws:s3:::bucket-*", "arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-b/home/*/x.txt", "arn:aws:s3:::bucket-a/home/alice/x.txt",
		"arn:aws:s3:*:*:bucket-a/*", "arn:aws:s3:::bucket-a/${aws:username}",
	}
	buckets = []string{"bucket-a", "bucket-b"}
	objKeys = []string{"home/alice/x.txt", "home/bob/x.txt", "public/z", "secret/s", "data/q", "alice"}
	users   = []string{"alice", "bob"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func oneOrMany(r *rand.Rand, s []any, max int) any {
	n := 1 + r.IntN(max)
	if n == 1 && r.IntN(2) == 0 {
		return pick(r, s)
	}
	out := make([]any, 0, n)
	for range n {
		out = append(out, pick(r, s))
	}
	return out
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func condition(r *rand.Rand) map[string]any {
	cond := map[string]any{}
	for range 1 + r.IntN(2) {
		k := pick(r, keys)
		var op string
		if r.IntN(8) == 0 {
			op = "Null"
			cond[op] = map[string]any{k.name: pick(r, []any{"true", "false"})}
			continue
		}
		op = pick(r, operators[k.kind])
		if r.IntN(5) == 0 {
			op += "IfExists"
		}
		// Multivalued keys always get a set operator: AWS documents plain
		// operators on them as a mistake, and evaluators differ (see
		// oracle/README.md, "Left out of generation").
		switch {
		case k.multi && r.IntN(2) == 0, !k.multi && r.IntN(40) == 0:
			op = "ForAnyValue:" + op
		case k.multi, !k.multi && r.IntN(40) == 0:
			op = "ForAllValues:" + op
		}
		m, _ := cond[op].(map[string]any)
		if m == nil {
			m = map[string]any{}
			cond[op] = m
		}
		m[k.name] = oneOrMany(r, k.policy, 3)
	}
	return cond
}

func statement(r *rand.Rand, sid int) map[string]any {
	s := map[string]any{"Effect": "Allow"}
	if r.IntN(4) == 0 {
		s["Effect"] = "Deny"
	}
	if r.IntN(3) == 0 {
		s["Sid"] = fmt.Sprintf("S%d", sid)
	}
	if r.IntN(7) == 0 {
		s["NotAction"] = oneOrMany(r, strs(actionPatterns), 2)
	} else {
		s["Action"] = oneOrMany(r, strs(actionPatterns), 3)
	}
	if r.IntN(7) == 0 {
		s["NotResource"] = oneOrMany(r, strs(objectPatterns), 2)
	} else {
		s["Resource"] = oneOrMany(r, strs(objectPatterns), 3)
	}
	if r.IntN(2) == 0 {
		s["Condition"] = condition(r)
	}
	return s
}

func policy(r *rand.Rand, allowBias bool) map[string]any {
	n := 1 + r.IntN(4)
	st := make([]any, 0, n+1)
	if allowBias && r.IntN(2) == 0 {
		st = append(st, map[string]any{"Effect": "Allow", "Action": "*", "Resource": "*"})
	}
	for i := range n {
		st = append(st, statement(r, i))
	}
	return map[string]any{"Version": "2012-10-17", "Statement": st}
}

// Generate returns the case for a seed. The same seed gives the same case.
func Generate(seed uint64) Case {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := Case{Seed: seed, Context: map[string][]string{}}
	for i := range 1 + r.IntN(2) {
		c.Identity = append(c.Identity, Doc{Name: fmt.Sprintf("identity%d", i+1), Policy: policy(r, false)})
	}
	user := pick(r, users)
	c.Principal = "arn:aws:iam::123456789012:user/" + user
	if r.IntN(3) == 0 {
		c.Session = policy(r, true)
		// Only a role session can carry a session policy.
		c.Principal = "arn:aws:sts::123456789012:assumed-role/data-role/" + user
	}
	if r.IntN(3) == 0 {
		c.Boundary = []Doc{{Name: "boundary", Policy: policy(r, true)}}
	}
	c.Action = pick(r, requestActions)
	bucket := pick(r, buckets)
	if c.Action == "s3:ListBucket" {
		c.Resource = "arn:aws:s3:::" + bucket
	} else {
		c.Resource = "arn:aws:s3:::" + bucket + "/" + pick(r, objKeys)
	}
	for _, k := range keys {
		if r.IntN(10) < 4 {
			continue
		}
		switch {
		case k.name == "aws:username":
			c.Context[k.name] = []string{user}
			if r.IntN(4) == 0 {
				c.Context[k.name] = []string{pick(r, k.ctx)}
			}
		case k.name == "aws:PrincipalArn":
			c.Context[k.name] = []string{c.Principal}
		case k.multi:
			n := r.IntN(4)
			vals := []string{}
			for range n {
				v := pick(r, k.ctx)
				if !containsStr(vals, v) {
					vals = append(vals, v)
				}
			}
			c.Context[k.name] = vals
			c.Multi = append(c.Multi, k.name)
		default:
			c.Context[k.name] = []string{pick(r, k.ctx)}
		}
	}
	// Context keys are case-insensitive: exercise that now and then.
	if r.IntN(5) == 0 {
		for k, v := range c.Context {
			if k != strings.ToLower(k) {
				delete(c.Context, k)
				c.Context[strings.ToLower(k)] = v
				if containsStr(c.Multi, k) {
					c.Multi = append(c.Multi, strings.ToLower(k))
				}
				break
			}
		}
	}
	return c
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
