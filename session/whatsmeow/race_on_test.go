//go:build race

package whatsmeow_test

// raceDetector is true when the tests run with -race.
const raceDetector = true
