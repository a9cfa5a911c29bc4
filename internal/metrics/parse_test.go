package metrics

import (
	"strings"
	"testing"
)

func TestParseText(t *testing.T) {
	m, err := ParseText(strings.NewReader("a 1\nb{x=\"y z\"} 2.5 1700000000\n\n# c 3\nd +Inf\n"))
	if err != nil || m["a"] != 1 || m[`b{x="y z"}`] != 2.5 || len(m) != 3 {
		t.Errorf("ParseText = %v, %v", m, err)
	}
	if _, err := ParseText(strings.NewReader("a\n")); err == nil {
		t.Error("a line without a value parsed")
	}
	if _, err := ParseText(strings.NewReader("a one\n")); err == nil {
		t.Error("a bad value parsed")
	}
}
