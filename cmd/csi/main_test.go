package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--mode is required"},
		{[]string{"--mode", "both"}, "want controller, node or all"},
		{[]string{"--mode", "node", "extra"}, "unexpected argument"},
		{[]string{"--mode", "node", "--log-level", "loud"}, "--log-level"},
		{[]string{"--mode", "controller"}, "needs the masters"},
		{[]string{"--mode", "node", "--mountd", "/bin/true"}, "needs a node id"},
		{[]string{"--mode", "controller", "--masters", "m:1", "--on-delete", "shred"}, "on-delete"},
		{[]string{"--mode", "controller", "--masters", "m:1", "--base-path", "/"}, "base path"},
	} {
		var stderr strings.Builder
		code := run(context.Background(), tc.args, io.Discard, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	var out strings.Builder
	if code := run(context.Background(), []string{"--version"}, &out, io.Discard); code != exitOK || !strings.HasPrefix(out.String(), "skyfs-csi ") {
		t.Errorf("exit %d, %q", code, out.String())
	}
}
