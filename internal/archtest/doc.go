// Package archtest holds the tests that keep the package layering of
// docs/ARCHITECTURE.md true: front ends depend on domain packages, never the
// reverse. It has no code of its own.
package archtest
