package queue

// SetRandom makes f draw the delays until the test ends (restore): the
// one seam of the randomness, for tests of this package only.
func SetRandom(f func() float64) (restore func()) {
	old := random
	random = f
	return func() { random = old }
}
