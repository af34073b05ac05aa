//go:build race

package websso_test

// raceDetector is true when the tests run under -race, where each request
// costs 5–10 times as much: flood tests then send fewer requests (the same
// property, checked with the detector watching) and the plain run sends
// the full count.
const raceDetector = true
