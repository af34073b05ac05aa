// Package awsname holds AWS's rules for the names that reach IAM policy
// variables and ARNs: user names (aws:username, ${aws:username} in home
// prefixes), role session names, source identities and role names.
//
// Every entry point that lets a name become one of these (SCIM, the admin
// REST API, federated sign-in claims, STS parameters) checks it here and
// refuses the rest in its own protocol's error model. The character set is
// AWS's: ASCII letters, digits and _+=,.@- (IAM User Guide, "IAM object
// quotas"; STS API reference, AssumeRole RoleSessionName and SourceIdentity).
// A name outside it could otherwise widen a policy: a user named "alice/x"
// would get "home/alice/x/*" through ${aws:username}.
package awsname

import (
	"fmt"
	"strings"
)

// Limits from the AWS IAM and STS API references.
const (
	MaxUserName        = 64
	MinSessionName     = 2
	MaxSessionName     = 64
	MinSourceIdentity  = 2
	MaxSourceIdentity  = 64
	MaxRoleName        = 64
	sourceIdentityAWS  = "aws:"
	allowedDescription = "letters, digits and _+=,.@-"
)

// Allowed reports whether c is in AWS's name character set [\w+=,.@-].
func Allowed(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("_+=,.@-", c) >= 0
}

// check returns an error unless s has min..max bytes, all in the set.
func check(what, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		return fmt.Errorf("%s must be %d to %d characters long (got %d)", what, minLen, maxLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !Allowed(s[i]) {
			return fmt.Errorf("%s may contain only %s; %q at offset %d is not allowed", what, allowedDescription, rune(s[i]), i)
		}
	}
	return nil
}

// UserName checks a name that becomes aws:username: 1–64 characters of
// [\w+=,.@-] (IAM CreateUser UserName).
func UserName(s string) error { return check("user name", s, 1, MaxUserName) }

// RoleSessionName checks an STS RoleSessionName: 2–64 characters of [\w+=,.@-].
func RoleSessionName(s string) error {
	return check("role session name", s, MinSessionName, MaxSessionName)
}

// SourceIdentity checks an sts:SourceIdentity: 2–64 characters of
// [\w+=,.@-], not starting with "aws:" (case-insensitively).
func SourceIdentity(s string) error {
	if err := check("source identity", s, MinSourceIdentity, MaxSourceIdentity); err != nil {
		return err
	}
	if len(s) >= len(sourceIdentityAWS) && strings.EqualFold(s[:len(sourceIdentityAWS)], sourceIdentityAWS) {
		return fmt.Errorf("source identity must not start with %q", sourceIdentityAWS)
	}
	return nil
}

// RoleName checks an IAM role name: 1–64 characters of [\w+=,.@-].
func RoleName(s string) error { return check("role name", s, 1, MaxRoleName) }

// SessionNameFrom turns any name (a user name, an IdP's NameID) into a
// valid RoleSessionName and default SourceIdentity: each byte outside the
// set becomes "-", the result is cut to 64 bytes and padded with "-" to 2.
// It never starts with "aws:", since ":" is outside the set.
func SessionNameFrom(name string) string {
	b := []byte(name)
	if len(b) > MaxSessionName {
		b = b[:MaxSessionName]
	}
	for i, c := range b {
		if !Allowed(c) {
			b[i] = '-'
		}
	}
	for len(b) < MinSessionName {
		b = append(b, '-')
	}
	return string(b)
}
