package scim

import "strings"

// Schema and message URNs (RFC 7643 §8.7, RFC 7644 §3).
const (
	URNUser          = "urn:ietf:params:scim:schemas:core:2.0:User"
	URNGroup         = "urn:ietf:params:scim:schemas:core:2.0:Group"
	URNEnterprise    = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	URNGatehouse     = "urn:gatehouse:params:scim:schemas:extension:2.0:User"
	URNListResponse  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	URNPatchOp       = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	URNSearchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	URNError         = "urn:ietf:params:scim:api:messages:2.0:Error"
	URNSPConfig      = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	URNResourceType  = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	URNSchema        = "urn:ietf:params:scim:schemas:core:2.0:Schema"

	// urnEntraGroup is a schema URI Microsoft Entra ID puts in the schemas
	// list of every group it creates. It defines no attributes we store, so
	// it is accepted and ignored.
	urnEntraGroup = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/Group"
)

// Attribute data types (RFC 7643 §2.3).
const (
	typeString    = "string"
	typeBoolean   = "boolean"
	typeDateTime  = "dateTime"
	typeReference = "reference"
	typeComplex   = "complex"
	typeInteger   = "integer"
)

// Mutability values (RFC 7643 §7).
const (
	mutReadOnly  = "readOnly"
	mutReadWrite = "readWrite"
	mutWriteOnly = "writeOnly"
	mutImmutable = "immutable"
)

// attribute is one attribute definition of a schema (RFC 7643 §7). It drives
// input validation, PATCH path resolution, filter typing and the /Schemas
// endpoint, so the three can never disagree.
type attribute struct {
	Name        string
	Type        string
	MultiValued bool
	Required    bool
	CaseExact   bool
	Mutability  string
	Returned    string // "always", "default", "never"
	Uniqueness  string // "none", "server"
	Description string
	Sub         []*attribute
	RefTypes    []string

	// ignored marks an RFC 7643 core attribute gatehouse does not persist
	// (phoneNumbers, locale, password...). It is accepted on input and
	// dropped, so standard IdP payloads do not fail; it is never returned
	// and is absent from /Schemas.
	ignored bool
	// dynamic marks a complex attribute whose sub-attribute names are free
	// (the gatehouse extension's "attributes" map). Every sub-attribute is a
	// case-exact, multi-valued string.
	dynamic bool
	// extension marks the pseudo-attribute that holds an extension schema's
	// attributes under its URN key (RFC 7643 §3.3).
	extension bool
}

func (a *attribute) readOnly() bool { return a.Mutability == mutReadOnly }

// sub returns the sub-attribute named name (case-insensitively, RFC 7643
// §2.1), synthesising one for dynamic attributes, or nil.
func (a *attribute) sub(name string) *attribute {
	for _, s := range a.Sub {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	if a.dynamic && validDynamicKey(name) {
		return &attribute{Name: name, Type: typeString, MultiValued: true, CaseExact: true, Mutability: mutReadWrite, Returned: "default"}
	}
	return nil
}

// validDynamicKey reports whether name may be a key of the gatehouse
// "attributes" map: 1–128 characters that survive a SCIM path unescaped.
func validDynamicKey(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// schema is one schema definition (RFC 7643 §7).
type schema struct {
	ID          string
	Name        string
	Description string
	Attributes  []*attribute
}

// resourceType ties an endpoint to its core schema and extensions
// (RFC 7643 §6). top holds the core attributes followed by one
// pseudo-attribute per extension, named by the extension URN.
type resourceType struct {
	Name       string
	Endpoint   string
	Core       *schema
	Extensions []*schema
	// extraSchemas are schema URIs accepted in "schemas" and ignored.
	extraSchemas []string
	top          []*attribute
}

func newResourceType(rt *resourceType) *resourceType {
	rt.top = append([]*attribute(nil), rt.Core.Attributes...)
	for _, ext := range rt.Extensions {
		rt.top = append(rt.top, &attribute{
			Name: ext.ID, Type: typeComplex, Mutability: mutReadWrite, Returned: "default",
			Sub: ext.Attributes, extension: true,
		})
	}
	return rt
}

// attr returns the top-level attribute or extension named name
// (case-insensitively), or nil.
func (rt *resourceType) attr(name string) *attribute {
	for _, a := range rt.top {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// knownSchema reports whether urn may appear in a resource's "schemas".
func (rt *resourceType) knownSchema(urn string) bool {
	if strings.EqualFold(urn, rt.Core.ID) {
		return true
	}
	for _, e := range rt.Extensions {
		if strings.EqualFold(urn, e.ID) {
			return true
		}
	}
	for _, s := range rt.extraSchemas {
		if strings.EqualFold(urn, s) {
			return true
		}
	}
	return false
}

func str(name, desc string, opts ...func(*attribute)) *attribute {
	a := &attribute{Name: name, Type: typeString, Mutability: mutReadWrite, Returned: "default", Uniqueness: "none", Description: desc}
	for _, o := range opts {
		o(a)
	}
	return a
}

func withType(t string) func(*attribute) { return func(a *attribute) { a.Type = t } }
func multi(a *attribute)                 { a.MultiValued = true }
func required(a *attribute)              { a.Required = true }
func caseExact(a *attribute)             { a.CaseExact = true }
func readOnly(a *attribute)              { a.Mutability = mutReadOnly }
func ignored(a *attribute)               { a.ignored = true }
func unique(a *attribute)                { a.Uniqueness = "server" }
func always(a *attribute)                { a.Returned = "always" }
func subs(s ...*attribute) func(*attribute) {
	return func(a *attribute) { a.Type = typeComplex; a.Sub = s }
}
func refTypes(t ...string) func(*attribute) {
	return func(a *attribute) { a.Type = typeReference; a.RefTypes = t }
}

// common attributes (RFC 7643 §3.1).
func idAttr() *attribute {
	return str("id", "Unique identifier assigned by gatehouse.", caseExact, readOnly, always, unique)
}

func externalIDAttr() *attribute {
	return str("externalId", "Identifier assigned by the provisioning client.", caseExact)
}

func metaAttr() *attribute {
	return str("meta", "Resource metadata.", readOnly, subs(
		str("resourceType", "", readOnly, caseExact),
		str("created", "", readOnly, withType(typeDateTime)),
		str("lastModified", "", readOnly, withType(typeDateTime)),
		str("location", "", readOnly, refTypes("uri")),
		str("version", "", readOnly, caseExact),
	))
}

// ignoredComplex is an RFC core attribute accepted and dropped; its value is
// not validated beyond being JSON.
func ignoredAttr(name string, multiValued bool) *attribute {
	a := str(name, "", ignored)
	a.MultiValued = multiValued
	return a
}

var userSchema = &schema{
	ID: URNUser, Name: "User", Description: "User Account",
	Attributes: []*attribute{
		idAttr(),
		externalIDAttr(),
		str("userName", "Unique identifier for the user, unique case-insensitively.", required, unique),
		str("name", "The components of the user's name.", subs(
			str("formatted", "Full name; derived from givenName and familyName. Accepted and ignored on input.", ignored),
			str("familyName", ""),
			str("givenName", ""),
			str("middleName", "", ignored),
			str("honorificPrefix", "", ignored),
			str("honorificSuffix", "", ignored),
		)),
		str("displayName", "Name displayed to end users."),
		str("title", "The user's title."),
		str("emails", "Email addresses of the user.", multi, subs(
			str("value", ""),
			str("type", ""),
			str("primary", "", withType(typeBoolean)),
			str("display", "", ignored),
		)),
		str("active", "Whether the user may sign in; false stops every token and session on the next request.", withType(typeBoolean)),
		str("groups", "Groups the user belongs to, directly or through nesting.", multi, readOnly, subs(
			str("value", "", readOnly, caseExact),
			str("$ref", "", readOnly, refTypes("Group")),
			str("display", "", readOnly),
			str("type", "direct or indirect", readOnly),
		)),
		metaAttr(),
		// RFC 7643 §4.1 attributes that gatehouse accepts and drops.
		ignoredAttr("nickName", false),
		ignoredAttr("profileUrl", false),
		ignoredAttr("userType", false),
		ignoredAttr("preferredLanguage", false),
		ignoredAttr("locale", false),
		ignoredAttr("timezone", false),
		ignoredAttr("password", false),
		ignoredAttr("phoneNumbers", true),
		ignoredAttr("ims", true),
		ignoredAttr("photos", true),
		ignoredAttr("addresses", true),
		ignoredAttr("entitlements", true),
		ignoredAttr("roles", true),
		ignoredAttr("x509Certificates", true),
	},
}

// enterpriseKeys are the enterprise-extension attributes, each stored as a
// single value under the same key in store.User.Attributes.
var enterpriseKeys = []string{"employeeNumber", "costCenter", "organization", "division", "department", "manager"}

var enterpriseSchema = &schema{
	ID: URNEnterprise, Name: "EnterpriseUser", Description: "Enterprise User",
	Attributes: []*attribute{
		str("employeeNumber", ""),
		str("costCenter", ""),
		str("organization", ""),
		str("division", ""),
		str("department", ""),
		str("manager", "The user's manager.", subs(
			str("value", "The id of the manager.", caseExact),
			str("$ref", "", refTypes("User"), ignored),
			str("displayName", "", readOnly),
		)),
	},
}

var gatehouseSchema = &schema{
	ID: URNGatehouse, Name: "GatehouseUser", Description: "gatehouse user attributes used by policies",
	Attributes: []*attribute{
		func() *attribute {
			a := str("attributes", "Multi-valued attributes for policies, e.g. {\"region\": [\"EU\"]}. Keys are case-sensitive: 1-128 of [A-Za-z0-9_-].")
			a.Type = typeComplex
			a.dynamic = true
			return a
		}(),
	},
}

var groupSchema = &schema{
	ID: URNGroup, Name: "Group", Description: "Group",
	Attributes: []*attribute{
		idAttr(),
		externalIDAttr(),
		str("displayName", "Human-readable name, unique case-insensitively.", required, unique),
		str("members", "Direct members: users or groups.", multi, subs(
			str("value", "", caseExact, func(a *attribute) { a.Mutability = mutImmutable }),
			str("$ref", "", refTypes("User", "Group"), ignored),
			str("display", "", readOnly),
			str("type", "User or Group", func(a *attribute) { a.Mutability = mutImmutable }),
		)),
		metaAttr(),
	},
}

var (
	userType = newResourceType(&resourceType{
		Name: "User", Endpoint: "/Users", Core: userSchema,
		Extensions: []*schema{enterpriseSchema, gatehouseSchema},
	})
	groupType = newResourceType(&resourceType{
		Name: "Group", Endpoint: "/Groups", Core: groupSchema,
		extraSchemas: []string{urnEntraGroup},
	})
	allSchemas = []*schema{userSchema, groupSchema, enterpriseSchema, gatehouseSchema}
)
