package mountd

import (
	"strings"
	"testing"
)

// TestCTOOption: -o cto and --cto ask for close-to-open at every open, the
// daemon mount.skyfs starts gets it too, and it takes no value.
func TestCTOOption(t *testing.T) {
	for _, args := range [][]string{
		{"-o", "cto", "m1:7700:/", "/mnt/x"},
		{"--cto", "m1:7700:/", "/mnt/x"},
	} {
		c, err := parseMountd(args)
		if err != nil || !c.CTO {
			t.Fatalf("%q: cto %v, %v", args, c != nil && c.CTO, err)
		}
		if c2, err := parseMountd(c.childArgs(3)); err != nil || !c2.CTO {
			t.Fatalf("child args %q: %+v, %v", c.childArgs(3), c2, err)
		}
	}
	c, err := parseMountd([]string{"m1:7700:/", "/mnt/x"})
	if err != nil || c.CTO {
		t.Fatalf("default: cto %v, %v", c != nil && c.CTO, err)
	}
	if err := newConfig().parseOptions("cto=1"); err == nil || !strings.Contains(err.Error(), "takes no value") {
		t.Fatalf("cto=1: %v", err)
	}
}
