package saml

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
)

// AWS SAML attribute names ("Configuring SAML assertions for the
// authentication response", AWS IAM User Guide).
const (
	AttrRole               = "https://aws.amazon.com/SAML/Attributes/Role"
	AttrRoleSessionName    = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
	AttrSessionDuration    = "https://aws.amazon.com/SAML/Attributes/SessionDuration"
	AttrSourceIdentity     = "https://aws.amazon.com/SAML/Attributes/SourceIdentity"
	AttrPrincipalTagPrefix = "https://aws.amazon.com/SAML/Attributes/PrincipalTag:"
	AttrTransitiveTagKeys  = "https://aws.amazon.com/SAML/Attributes/TransitiveTagKeys"
)

// Limits from the AWS STS API reference.
const (
	MinSessionDuration = 900 * time.Second
	MaxSessionDuration = 43200 * time.Second
	maxSessionTags     = 50
	maxRoleValues      = 256
)

// RolePair is one role the IdP lets the user assume, with the SAML provider
// (IdP registration) that vouches for it.
type RolePair struct {
	RoleARN     string
	ProviderARN string
}

// AWSAttributes are the AWS-defined SAML attributes of an assertion, parsed
// and checked against the documented constraints. Absent attributes leave
// zero values.
type AWSAttributes struct {
	// Roles lists the role/provider pairs, de-duplicated, in document order.
	Roles []RolePair
	// RoleSessionName: 2–64 characters of [\w+=,.@-].
	RoleSessionName string
	// SessionDuration: 900–43200 seconds, zero when absent.
	SessionDuration time.Duration
	// SourceIdentity: 2–64 characters of [\w+=,.@-], not starting with "aws:".
	SourceIdentity string
	// PrincipalTags maps session tag keys to values (at most 50).
	PrincipalTags map[string]string
	// TransitiveTagKeys lists tag keys that carry over in role chaining.
	TransitiveTagKeys []string
}

var (
	// arn:partition:iam::account:role/path/name or :saml-provider/name
	arnRE      = regexp.MustCompile(`^arn:[a-z][a-z0-9-]{0,62}:iam::(\d{12}):(role/[\w+=,.@/-]{1,512}|saml-provider/[\w.-]{1,128})$`)
	tagKeyRE   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
)

const roleFix = "each " + AttrRole + " value must be 'roleArn,providerArn', e.g. " +
	"'arn:aws:iam::123456789012:role/Analyst,arn:aws:iam::123456789012:saml-provider/MyIdP' (either order)"

// ParseRolePair parses one Role attribute value: a role ARN and a SAML
// provider ARN separated by a comma, in either order.
func ParseRolePair(v string) (RolePair, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 2 {
		return RolePair{}, newError(CodeMalformedRoleAttribute, "role-parts", roleFix,
			"role attribute value %s has %d comma-separated parts, want 2", q(v), len(parts))
	}
	var p RolePair
	for _, part := range parts {
		part = strings.TrimSpace(part)
		m := arnRE.FindStringSubmatch(part)
		if m == nil {
			return RolePair{}, newError(CodeMalformedRoleAttribute, "role-arn", roleFix,
				"role attribute value %s: %s is not an IAM role or saml-provider ARN", q(v), q(part))
		}
		if strings.HasPrefix(m[2], "role/") {
			if p.RoleARN != "" {
				return RolePair{}, newError(CodeMalformedRoleAttribute, "role-arn", roleFix,
					"role attribute value %s has two role ARNs and no provider ARN", q(v))
			}
			p.RoleARN = part
		} else {
			if p.ProviderARN != "" {
				return RolePair{}, newError(CodeMalformedRoleAttribute, "role-arn", roleFix,
					"role attribute value %s has two provider ARNs and no role ARN", q(v))
			}
			p.ProviderARN = part
		}
	}
	return p, nil
}

func parseAWSAttributes(attrs map[string][]string) (AWSAttributes, *Error) {
	var out AWSAttributes
	single := func(name string) (string, bool, *Error) {
		vs, ok := attrs[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, newError(CodeValidationError, "attribute-count", "send exactly one value for "+name,
				"%s has %d values, want 1", name, len(vs))
		}
		return vs[0], true, nil
	}

	values := attrs[AttrRole]
	if len(values) > maxRoleValues {
		return out, newError(CodeValidationError, "too-many-roles", "grant the user fewer roles",
			"%s has %d values, the limit is %d", AttrRole, len(values), maxRoleValues)
	}
	seen := map[RolePair]bool{}
	for _, v := range values {
		p, err := ParseRolePair(v)
		if err != nil {
			return out, err.(*Error)
		}
		if !seen[p] {
			seen[p] = true
			out.Roles = append(out.Roles, p)
		}
	}

	if v, ok, e := single(AttrRoleSessionName); e != nil {
		return out, e
	} else if ok {
		if awsname.RoleSessionName(v) != nil {
			return out, newError(CodeValidationError, "role-session-name",
				"map "+AttrRoleSessionName+" to a value of 2–64 characters from [A-Za-z0-9_+=,.@-], such as the user's email",
				"RoleSessionName %s must be 2–64 characters of [\\w+=,.@-]", q(v))
		}
		out.RoleSessionName = v
	}
	if v, ok, e := single(AttrSessionDuration); e != nil {
		return out, e
	} else if ok {
		n, err := strconv.Atoi(v)
		d := time.Duration(n) * time.Second
		if err != nil || d < MinSessionDuration || d > MaxSessionDuration {
			return out, newError(CodeValidationError, "session-duration",
				"set "+AttrSessionDuration+" to a number of seconds between 900 and 43200",
				"SessionDuration %s is not a number of seconds between 900 and 43200", q(v))
		}
		out.SessionDuration = d
	}
	if v, ok, e := single(AttrSourceIdentity); e != nil {
		return out, e
	} else if ok {
		if awsname.SourceIdentity(v) != nil {
			return out, newError(CodeValidationError, "source-identity",
				"map "+AttrSourceIdentity+" to 2–64 characters from [A-Za-z0-9_+=,.@-], not starting with 'aws:'",
				"SourceIdentity %s is invalid", q(v))
		}
		out.SourceIdentity = v
	}

	lower := map[string]string{}
	for name, vs := range attrs {
		key, ok := strings.CutPrefix(name, AttrPrincipalTagPrefix)
		if !ok {
			continue
		}
		tagFix := "session tag keys are 1–128 and values 0–256 characters of letters, digits, spaces and _.:/=+-@, one value per tag, keys not starting with 'aws:'"
		if !tagKeyRE.MatchString(key) || strings.HasPrefix(strings.ToLower(key), "aws:") {
			return out, newError(CodeValidationError, "session-tag", tagFix, "session tag key %s is invalid", q(key))
		}
		if len(vs) != 1 {
			return out, newError(CodeValidationError, "session-tag", tagFix, "session tag %s has %d values, want 1", q(key), len(vs))
		}
		if utf8.RuneCountInString(vs[0]) > 256 || !tagValueRE.MatchString(vs[0]) {
			return out, newError(CodeValidationError, "session-tag", tagFix, "session tag %s has an invalid value", q(key))
		}
		if prev, dup := lower[strings.ToLower(key)]; dup {
			return out, newError(CodeValidationError, "session-tag", "send each session tag once (keys are case-insensitive)",
				"session tags %s and %s differ only in case", q(prev), q(key))
		}
		lower[strings.ToLower(key)] = key
		if out.PrincipalTags == nil {
			out.PrincipalTags = map[string]string{}
		}
		out.PrincipalTags[key] = vs[0]
	}
	if len(out.PrincipalTags) > maxSessionTags {
		return out, newError(CodeValidationError, "session-tag", "send at most 50 session tags",
			"the assertion has %d session tags, the limit is %d", len(out.PrincipalTags), maxSessionTags)
	}
	for _, k := range attrs[AttrTransitiveTagKeys] {
		if _, ok := lower[strings.ToLower(k)]; !ok {
			return out, newError(CodeValidationError, "session-tag", "list only keys of PrincipalTag attributes in "+AttrTransitiveTagKeys,
				"transitive tag key %s is not a session tag of the assertion", q(k))
		}
		out.TransitiveTagKeys = append(out.TransitiveTagKeys, k)
	}
	return out, nil
}

// RoleFor checks that the assertion lets its subject assume roleARN through
// the SAML provider providerARN, as AssumeRoleWithSAML must, and that it
// carries a RoleSessionName. It returns an *Error with CodeAccessDenied when
// the pair is not granted.
func (a *Assertion) RoleFor(roleARN, providerARN string) (RolePair, error) {
	if a.AWS.RoleSessionName == "" {
		return RolePair{}, invalidToken("no-role-session-name",
			"map the IdP attribute "+AttrRoleSessionName+" (for example to the user's email or username)",
			"the assertion has no %s", AttrRoleSessionName)
	}
	want := RolePair{RoleARN: roleARN, ProviderARN: providerARN}
	for _, p := range a.AWS.Roles {
		if p == want {
			return p, nil
		}
	}
	return RolePair{}, newError(CodeAccessDenied, "role-not-granted",
		fmt.Sprintf("add %q to the user's %s attribute at the IdP", roleARN+","+providerARN, AttrRole),
		"the assertion does not grant role %s through provider %s", q(roleARN), q(providerARN))
}
