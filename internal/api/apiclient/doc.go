// Package apiclient is the Go client of gatehouse's admin REST API: its wire
// types and request builders are generated from api/openapi.yaml by the
// oapi-codegen version pinned in go.mod, so a client built on it cannot drift
// from the API the server routes and validates. Do not edit apiclient.gen.go:
// change the OpenAPI document and run go generate; TestGeneratedUpToDate
// fails until the two agree.
package apiclient

//go:generate go tool oapi-codegen -config oapi-codegen.yaml -o apiclient.gen.go ../../../api/openapi.yaml
