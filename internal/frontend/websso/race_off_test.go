//go:build !race

package websso_test

// raceDetector: see race_on_test.go.
const raceDetector = false
