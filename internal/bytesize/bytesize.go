// Package bytesize parses byte counts written for people: "4096", "8M",
// "20G", "2GiB", "512KB". Every suffix is a power of 1024, in either case,
// with an optional "i" and "B" after it.
package bytesize

import (
	"errors"
	"strconv"
	"strings"
)

// Errors of Parse.
var (
	// ErrSyntax is a string that is not a byte count.
	ErrSyntax = errors.New("want a number of bytes with an optional K, M, G or T suffix")
	// ErrRange is a count above 2^63-1 bytes.
	ErrRange = errors.New("too large")
)

// Parse returns the number of bytes s names (surrounding white space is
// ignored).
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRight(s, "KMGTkmgtiIbB")
	suffix := strings.ToUpper(s[len(num):])
	suffix = strings.TrimSuffix(strings.TrimSuffix(suffix, "B"), "I")
	shift := 0
	switch suffix {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	default:
		return 0, ErrSyntax
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, ErrRange
		}
		return 0, ErrSyntax
	}
	if n > (1<<63-1)>>shift {
		return 0, ErrRange
	}
	return int64(n) << shift, nil
}
