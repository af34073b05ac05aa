// Package saml is gatehouse's SAML 2.0 service-provider validation core.
//
// It turns the value of an HTTP-POST binding SAMLResponse form field into a
// verified [Assertion], or into an [*Error] carrying a stable code, a human
// cause and a fix. It is a library: it does no HTTP and keeps no state of its
// own except through the [ReplayCache] it is given, so the ACS endpoint and the
// STS AssumeRoleWithSAML front end can share it.
//
// Signature verification is done by github.com/russellhaering/gosaml2 and
// github.com/russellhaering/goxmldsig; this package adds what those libraries
// leave to the caller or only warn about (see docs/design/0005-saml-sp.md):
//
//   - an algorithm allowlist (no SHA-1, RSA keys of at least 2048 bits,
//     ECDSA on P-256 or larger), enforced on every signature in the message;
//   - hard failures for a missing or wrong audience and for a time window
//     outside [NotBefore-skew, NotOnOrAfter+skew);
//   - exactly one assertion, taken only from the element a signature covers;
//   - no DTDs, entities, multiple roots, deep nesting or oversized input;
//   - one-time use of each assertion ID until it expires;
//   - parsing of the AWS SAML attributes (Role, RoleSessionName,
//     SessionDuration, SourceIdentity, PrincipalTag:*, TransitiveTagKeys).
//
// References: SAML 2.0 core (saml-core-2.0-os) §2.3–2.7 and §3.2–3.3,
// bindings (saml-bindings-2.0-os) §3.5, profiles (saml-profiles-2.0-os)
// §4.1.4, and the AWS IAM documentation "Configuring SAML assertions for the
// authentication response".
package saml
