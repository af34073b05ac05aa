// Package api holds gatehouse's admin REST API description. The OpenAPI
// document is the routing table and request validator of internal/api: an
// operation that is not in it does not exist.
package api

import _ "embed"

// Spec is the OpenAPI 3.0.3 document of the admin REST API (YAML).
//
//go:embed openapi.yaml
var Spec []byte
