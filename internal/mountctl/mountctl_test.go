package mountctl

import (
	"strings"
	"testing"
)

func TestServingAndExporting(t *testing.T) {
	found := []Found{
		{Info: &Info{MountPoint: "/mnt/all", Masters: []string{"a:1"}, Path: "/"}},
		{Info: &Info{MountPoint: "/mnt/lake", Masters: []string{"a:1"}, Path: "/lake"}},
		{Info: &Info{MountPoint: "/mnt/lake/deep", Masters: []string{"b:1"}, Path: "/other"}},
	}
	for _, c := range []struct {
		local, mp, rel string
	}{
		{"/mnt/lake/x/y", "/mnt/lake", "x/y"},
		{"/mnt/lake", "/mnt/lake", ""},
		{"/mnt/lake/deep/z", "/mnt/lake/deep", "z"},
		{"/mnt/lakeside", "", ""},
		{"/elsewhere", "", ""},
	} {
		d, rel := Serving(found, c.local)
		if mp := mpOf(d); mp != c.mp || rel != c.rel {
			t.Errorf("Serving(%s) = %s %q, want %s %q", c.local, mp, rel, c.mp, c.rel)
		}
	}
	for _, c := range []struct {
		ns      string
		masters []string
		mp, rel string
	}{
		{"/lake/x", nil, "/mnt/lake", "x"},
		{"/lake", nil, "/mnt/lake", ""},
		{"/lakeside", nil, "/mnt/all", "lakeside"},
		{"/", nil, "/mnt/all", ""},
		{"/other/f", []string{"b:1"}, "/mnt/lake/deep", "f"},
		{"/lake/x", []string{"b:1"}, "", ""},
	} {
		d, rel := Exporting(found, c.ns, c.masters)
		if mp := mpOf(d); mp != c.mp || rel != c.rel {
			t.Errorf("Exporting(%s, %v) = %s %q, want %s %q", c.ns, c.masters, mp, rel, c.mp, c.rel)
		}
	}
}

func mpOf(d *Found) string {
	if d == nil {
		return ""
	}
	return d.Info.MountPoint
}

func TestSocketPathAndRunDir(t *testing.T) {
	long := "/" + strings.Repeat("x/", 200)
	if p := SocketPath("/run/skyfs", long); len(p) > 100 || SocketPath("/run/skyfs", long) != p || SocketPath("/run/skyfs", "/mnt/a") == p {
		t.Errorf("SocketPath: %q", p)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if d := RunDir(getenv); d != DefaultRunDir {
		t.Errorf("RunDir = %q", d)
	}
	env[EnvRunDir] = "/tmp/r"
	if d := RunDir(getenv); d != "/tmp/r" {
		t.Errorf("RunDir with $%s = %q", EnvRunDir, d)
	}
}
