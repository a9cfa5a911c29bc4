package secrets

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// ReadOptionsFile reads UFS options from a secret file of "key=value"
// lines (blank lines and lines starting with # are skipped; spaces around
// key and value are trimmed): the way to hand credentials to a command
// without putting them on its command line.
func ReadOptionsFile(path string) (map[string]string, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	out := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("%s line %d: want key=value", path, n)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, sc.Err()
}
