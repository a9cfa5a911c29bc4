package mountd

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	good := []struct {
		spec    string
		masters []string
		path    string
	}{
		{"m1:7700,m2:7700,m3:7700:/warehouse", []string{"m1:7700", "m2:7700", "m3:7700"}, "/warehouse"},
		{"127.0.0.1:7700:/", []string{"127.0.0.1:7700"}, "/"},
		{"[::1]:7700,m2:1:/a/b/", []string{"[::1]:7700", "m2:1"}, "/a/b"},
		{"m1:7700://a//b", []string{"m1:7700"}, "/a/b"},
	}
	for _, tc := range good {
		masters, p, err := parseSpec(tc.spec)
		if err != nil || !slices.Equal(masters, tc.masters) || p != tc.path {
			t.Errorf("parseSpec(%q) = %q, %q, %v; want %q, %q", tc.spec, masters, p, err, tc.masters, tc.path)
		}
	}
	bad := []struct{ spec, want string }{
		{"", "want HOST:PORT"},
		{"m1:7700", "want HOST:PORT"},
		{"m1:7700/warehouse", "want HOST:PORT"},
		{":/warehouse", "no masters"},
		{"m1:7700,,m2:7700:/x", "empty master address"},
		{"m1:/x", `master "m1": want HOST:PORT`},
		{"m1,m2:7700:/x", `master "m1": want HOST:PORT`},
		{":7700:/x", "has no host"},
		{"m1:0:/x", "port must be a number"},
		{"m1:70000:/x", "port must be a number"},
		{"m1:http:/x", "port must be a number"},
		{"m1:7700,m1:7700:/x", "listed twice"},
		{"m1:7700:/a/../b", `".." is not allowed`},
		{"m1:7700:/a/./b", `"." is not allowed`},
		{"m1:7700:/a\x00b", "NUL"},
		{"m1:7700:/" + strings.Repeat("n", 256), "longer than 255"},
		{"m1:7700:/" + strings.Repeat("n/", 2048), "longer than 4095"},
	}
	for _, tc := range bad {
		_, _, err := parseSpec(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseSpec(%.40q): %v; want one line with %q", tc.spec, err, tc.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	c := newConfig()
	err := c.parseOptions("rw,defaults,noauto,_netdev,nofail,user,user=bob,x-systemd.automount,allow_other," +
		"default_permissions,cache_dir=/var/cache/x/,cache_size=20G,token_file=/etc/skyfs/token," +
		"attr_timeout=1.5,entry_timeout=250ms,ro,,debug,noatime,nosuid,nodev,comment=x,log_file=/l")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		CacheDir: "/var/cache/x", CacheSize: 20 << 30, TokenFile: "/etc/skyfs/token", LogFile: "/l",
		ReadOnly: true, AttrTimeout: 1500 * time.Millisecond, EntryTimeout: 250 * time.Millisecond, Debug: true,
	}
	if c.CacheDir != want.CacheDir || c.CacheSize != want.CacheSize || c.TokenFile != want.TokenFile ||
		c.LogFile != want.LogFile || c.ReadOnly != want.ReadOnly || c.AttrTimeout != want.AttrTimeout ||
		c.EntryTimeout != want.EntryTimeout || c.Debug != want.Debug {
		t.Fatalf("got %+v\nwant %+v", *c, want)
	}
	if err := c.parseOptions("rw"); err != nil || c.ReadOnly {
		t.Fatalf("rw after ro: read-only %v, %v", c.ReadOnly, err)
	}

	bad := []struct{ opts, want string }{
		{"bogus", "unknown option bogus"},
		{"secret_key=hunter22", "unknown option secret_key"},
		{"cache_dir", "option cache_dir needs a value"},
		{"cache_dir=", "option cache_dir needs a value"},
		{"cache_dir=relative/dir", "not an absolute path"},
		{"token_file=token", "not an absolute path"},
		{"cache_size=lots", "want a number of bytes"},
		{"cache_size=10X", "want a number of bytes"},
		{"cache_size=-1G", "want a number of bytes"},
		{"cache_size=1K", "smaller than one cache block"},
		{"cache_size=99999999999T", "too large"},
		{"attr_timeout=soon", "want seconds"},
		{"attr_timeout=-1", "negative"},
		{"entry_timeout=-1s", "negative"},
		{"entry_timeout=48h", "longer than a day"},
		{"attr_timeout=1e300", "longer than a day"},
		{"mount_timeout=0", "must be positive"},
		{"ro=1", "option ro takes no value"},
		{"_netdev=yes", "option _netdev takes no value"},
	}
	for _, tc := range bad {
		err := newConfig().parseOptions(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseOptions(%q): %v; want one line with %q", tc.opts, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter22") {
			t.Errorf("parseOptions(%q) echoes the value: %v", tc.opts, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{
		"4194304": 4 << 20, "4M": 4 << 20, "4m": 4 << 20, "4MiB": 4 << 20, "4MB": 4 << 20,
		"20G": 20 << 30, "1T": 1 << 40, "8g": 8 << 30, "4096K": 4 << 20,
		"512K": 0, "": 0, "G": 0, "1.5G": 0, // errors
	} {
		got, err := parseSize(s)
		if want == 0 {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", s, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

func TestParseHelper(t *testing.T) {
	c, err := parseHelper([]string{"m1:7700,m2:7700:/warehouse", "/mnt/wh", "-sn", "-v", "-o", "cache_dir=/c,cache_size=1G,_netdev", "-t", "skyfs"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Masters, []string{"m1:7700", "m2:7700"}) || c.Path != "/warehouse" || c.MountPoint != "/mnt/wh" ||
		c.CacheDir != "/c" || c.CacheSize != 1<<30 || !c.Verbose || c.Fake || c.LogFile != "/c/mountd.log" {
		t.Fatalf("got %+v", *c)
	}
	c, err = parseHelper([]string{"-fro", "ro", "m1:7700:/", "/mnt/x"})
	if err != nil || !c.Fake || !c.ReadOnly || c.CacheDir != DefaultCacheRoot+"/mnt-x" {
		t.Fatalf("got %+v, %v", c, err)
	}
	c, err = parseHelper([]string{"m1:7700:/", "/", "-oro"})
	if err != nil || !c.ReadOnly || c.CacheDir != DefaultCacheRoot+"/root" {
		t.Fatalf("got %+v, %v", c, err)
	}
	if _, err := parseHelper([]string{"--help"}); !errors.Is(err, errHelp) {
		t.Fatalf("--help: %v", err)
	}

	bad := []struct {
		args []string
		want string
	}{
		{nil, "want SPEC and DIR, got 0"},
		{[]string{"m1:7700:/"}, "want SPEC and DIR, got 1"},
		{[]string{"m1:7700:/", "/a", "/b"}, "want SPEC and DIR, got 3"},
		{[]string{"m1:7700:/", "/a", "-o"}, "-o needs a value"},
		{[]string{"m1:7700:/", "/a", "-x"}, "unknown flag -x"},
		{[]string{"m1:7700:/", "/a", "-t", "nfs"}, "mounts skyfs only"},
		{[]string{"m1:7700:/", "/a", "-N", "/proc/1/ns/mnt"}, "not supported"},
		{[]string{"m1:7700:/", "/a", "-o", "cache_size=big"}, "option cache_size"},
		{[]string{"m1", "/a"}, "want HOST:PORT"},
	}
	for _, tc := range bad {
		_, err := parseHelper(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseHelper(%q): %v; want one line with %q", tc.args, err, tc.want)
		}
	}
}

func TestParseMountd(t *testing.T) {
	c, err := parseMountd([]string{"--cache-dir", "/c", "m1:7700:/data", "/mnt/d", "--ro", "-o", "attr_timeout=0,cache_size=64M,mount_timeout=5s", "--ready-fd", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheDir != "/c" || !c.ReadOnly || c.AttrTimeout != 0 || c.CacheSize != 64<<20 || c.readyFD != 3 ||
		c.Path != "/data" || c.MountPoint != "/mnt/d" || c.MountTimeout != 5*time.Second {
		t.Fatalf("got %+v", *c)
	}
	if kernelTimeout(c.AttrTimeout) <= 0 || kernelTimeout(c.EntryTimeout) != DefaultTimeout {
		t.Fatalf("kernel timeouts %v %v", kernelTimeout(c.AttrTimeout), kernelTimeout(c.EntryTimeout))
	}
	// The daemon's command line reproduces the configuration.
	d, err := parseMountd(c.childArgs(3))
	if err != nil {
		t.Fatal(err)
	}
	d.Fake, d.Verbose = c.Fake, c.Verbose
	if d.spec() != c.spec() || d.MountPoint != c.MountPoint || d.CacheDir != c.CacheDir || d.CacheSize != c.CacheSize ||
		d.ReadOnly != c.ReadOnly || d.AttrTimeout != c.AttrTimeout || d.EntryTimeout != c.EntryTimeout || d.LogFile != c.LogFile || d.MountTimeout != c.MountTimeout {
		t.Fatalf("child config %+v\nwant %+v", *d, *c)
	}

	bad := []struct {
		args []string
		want string
	}{
		{nil, "want SPEC and MOUNTPOINT, got 0"},
		{[]string{"m1:7700:/", "/a", "/b"}, "got 3"},
		{[]string{"--bogus", "m1:7700:/", "/a"}, "not defined"},
		{[]string{"--cache-size", "1K", "m1:7700:/", "/a"}, "smaller than one cache block"},
		{[]string{"-o", "nope", "m1:7700:/", "/a"}, "unknown option nope"},
		{[]string{"--ready-fd", "1", "m1:7700:/", "/a"}, "not a usable descriptor"},
		{[]string{"m1:7700", "/a"}, "want HOST:PORT"},
	}
	for _, tc := range bad {
		_, err := parseMountd(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseMountd(%q): %v; want one line with %q", tc.args, err, tc.want)
		}
	}
}

func TestUsageDocumentsFstab(t *testing.T) {
	for _, helper := range []bool{false, true} {
		var b strings.Builder
		usage(&b, helper)
		if !strings.Contains(b.String(), "/etc/fstab") || !strings.Contains(b.String(), " skyfs cache_dir=") {
			t.Errorf("usage (helper %v) does not show an fstab line:\n%s", helper, b.String())
		}
	}
}

// Without token_file, $SKYFS_TOKEN_FILE names the token, as for the CLI;
// the option wins, and the daemon mount.skyfs starts is given the file.
func TestTokenFileFromEnv(t *testing.T) {
	t.Setenv(EnvTokenFile, "/s/admin.token")
	c, err := parseMountd([]string{"m1:7700:/", "/mnt/d"})
	if err != nil || c.TokenFile != "/s/admin.token" {
		t.Fatalf("from the environment: %v, %v", c, err)
	}
	if c, err := parseHelper([]string{"m1:7700:/", "/mnt/d"}); err != nil || c.TokenFile != "/s/admin.token" {
		t.Errorf("mount.skyfs from the environment: %v, %v", c, err)
	} else if !slices.Contains(c.childArgs(3), "/s/admin.token") {
		t.Errorf("the daemon's arguments lack the token file: %v", c.childArgs(3))
	}
	if c, err := parseMountd([]string{"m1:7700:/", "/mnt/d", "-o", "token_file=/s/mount.token"}); err != nil || c.TokenFile != "/s/mount.token" {
		t.Errorf("the option: %v, %v", c, err)
	}
	t.Setenv(EnvTokenFile, "relative.token")
	if _, err := parseMountd([]string{"m1:7700:/", "/mnt/d"}); err == nil || !strings.Contains(err.Error(), EnvTokenFile) {
		t.Errorf("a relative $%s: %v", EnvTokenFile, err)
	}
}
