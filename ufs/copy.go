package ufs

import (
	"fmt"
	"io"
)

// CopyExactly copies exactly size bytes from r to w and checks that r has nothing
// more, as Put requires. A short or long reader gives an error wrapping
// ErrSizeMismatch.
func CopyExactly(w io.Writer, r io.Reader, size int64) error {
	n, err := io.CopyN(w, r, size)
	if err == io.EOF {
		return fmt.Errorf("%w: got %d bytes, want %d", ErrSizeMismatch, n, size)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return fmt.Errorf("%w: more than %d bytes", ErrSizeMismatch, size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
