package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// unit is a parsed systemd unit: section -> key -> values (a key may be
// given more than once).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, p string) unit {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		case sec == "":
			t.Errorf("%s:%d: a setting outside a section", p, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s:%d: %q is not KEY=VALUE", p, n, line)
				continue
			}
			u[sec][strings.TrimSpace(k)] = append(u[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// get returns the last value of key in [Service].
func (u unit) get(key string) (string, bool) {
	v := u["Service"][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// namespaceOptions give a service a mount namespace of its own, in which a
// FUSE mount would stay hidden from the host.
var namespaceOptions = []string{
	"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "ReadWritePaths",
	"ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths",
	"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
	"ProtectProc", "ProcSubset", "MountFlags", "RootDirectory", "RootImage", "PrivateNetwork",
}

// TestSystemdUnits checks the hardening of the units and that they start
// binaries the build makes with flags those have; with systemd-analyze
// installed, the units (pointed at the built binaries) also pass systemd's
// own verification.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "systemd")
	binDir := buildImageBinaries(t)

	m := parseUnit(t, filepath.Join(dir, "skyfs-masterd.service"))
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "CapabilityBoundingSet": "", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "StateDirectory": "skyfs-masterd",
	} {
		if v, ok := m.get(k); !ok || v != want {
			t.Errorf("skyfs-masterd.service: %s=%q (set %v), want %q", k, v, ok, want)
		}
	}
	if u, _ := m.get("User"); u == "" || u == "root" || u == "0" {
		t.Errorf("skyfs-masterd.service runs as %q, want an unprivileged user", u)
	}

	mo := parseUnit(t, filepath.Join(dir, "skyfs-mountd@.service"))
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "CAP_SYS_ADMIN", "DevicePolicy": "closed", "DeviceAllow": "/dev/fuse rw",
	} {
		if v, ok := mo.get(k); !ok || v != want {
			t.Errorf("skyfs-mountd@.service: %s=%q (set %v), want %q", k, v, ok, want)
		}
	}
	for _, k := range namespaceOptions {
		if _, ok := mo.get(k); ok {
			t.Errorf("skyfs-mountd@.service sets %s: its mount namespace would hide the FUSE mount from the host", k)
		}
	}

	for name, u := range map[string]unit{"skyfs-masterd.service": m, "skyfs-mountd@.service": mo} {
		exec, _ := u.get("ExecStart")
		f := strings.Fields(exec)
		if len(f) == 0 {
			t.Errorf("%s: no ExecStart", name)
			continue
		}
		if !strings.HasPrefix(f[0], "/usr/local/bin/") {
			t.Errorf("%s: ExecStart runs %s, not a binary make install puts in /usr/local/bin", name, f[0])
		}
		checkFlags(t, name, path.Base(f[0]), f[1:])
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units are checked by the parser above only")
		return
	}
	tmp := t.TempDir()
	verify := func(file, text string) string {
		p := filepath.Join(tmp, file)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for file, instance := range map[string]string{"skyfs-masterd.service": "skyfs-masterd.service", "skyfs-mountd@.service": "skyfs-mountd@mnt-wh.service"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/local/bin/", binDir+"/")
		if out := verify(instance, text); out != "" {
			t.Errorf("systemd-analyze verify %s:\n%s", file, out)
		}
	}
	// The verification does report what is wrong.
	if out := verify("broken.service", "[Service]\nExecStart=/bin/true\nNoSuchSetting=1\n"); !strings.Contains(out, "NoSuchSetting") {
		t.Errorf("systemd-analyze verify said nothing of an unknown setting: %q", out)
	}
}
