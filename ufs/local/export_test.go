package local

// SetWindowSize changes how many entries a directory scan keeps, for tests of
// listings that need several scans. It returns a function restoring the old size.
func SetWindowSize(n int) (restore func()) {
	old := windowSize
	windowSize = n
	return func() { windowSize = old }
}
