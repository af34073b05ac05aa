// Package iam implements the AWS IAM policy language: parsing and validation
// of JSON policy documents, compilation into an indexed form, and evaluation
// of requests against identity policies, session policies and permissions
// boundaries with AWS semantics.
//
// The package is pure: it performs no I/O, opens no network connections and
// never reads the clock. Time-dependent conditions (Date* operators on
// aws:CurrentTime, aws:EpochTime, …) see only what the caller puts in
// [Request.Context].
//
// References (AWS IAM User Guide):
//   - "Policy evaluation logic" (explicit deny > allow > implicit deny; identity
//     ∩ session ∩ boundary).
//   - "IAM JSON policy elements: Condition operators" (operators, IfExists,
//     Null, missing keys: negated operators are true, the others false).
//   - "Single-valued vs multivalued context keys" (ForAnyValue / ForAllValues;
//     ForAllValues on an empty or missing key is true, ForAnyValue false).
//   - "AWS JSON policy elements: Principal" and "…: NotPrincipal" (typed
//     principals; "*" and {"AWS": "*"} name anonymous callers; NotPrincipal
//     must name every identity of the caller, its account included).
//   - "IAM policy elements: Variables and tags" (${…}, ${*}, ${?}, ${$},
//     defaults; "Policy variables with no value": a variable without a value
//     is null, so a value or Resource/NotResource pattern holding it matches
//     nothing and negated operators are true against it).
package iam
