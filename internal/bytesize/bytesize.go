// Package bytesize parses byte counts written for people: "4096", "8M",
// "20G", "2GiB", "512KB". Every suffix is a power of 1024, in either case,
// with an optional "i" and "B" after it. Format writes them back for people.
package bytesize

import (
	"errors"
	"fmt"
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

// Format renders n in binary units: 512 B, 1.5 KiB, 3.0 GiB.
func Format(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
