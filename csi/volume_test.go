package csi

import (
	"slices"
	"strings"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseAttrs(t *testing.T) {
	def := []string{"m1:7700"}
	for _, tc := range []struct {
		attrs map[string]string
		want  volumeAttrs
		err   string
	}{
		{attrs: map[string]string{"path": "/v/a"}, want: volumeAttrs{Path: "/v/a", Masters: def}},
		{attrs: map[string]string{"path": "/v//a/", "masters": "a:1,b:2", "cacheSize": "1G", "readOnly": "true",
			"storage.kubernetes.io/csiProvisionerIdentity": "x"},
			want: volumeAttrs{Path: "/v/a", Masters: []string{"a:1", "b:2"}, CacheSize: 1 << 30, ReadOnly: true}},
		{attrs: map[string]string{}, err: "attribute path"},
		{attrs: map[string]string{"path": "v/a"}, err: "not an absolute path"},
		{attrs: map[string]string{"path": "/v/../etc"}, err: `".."`},
		{attrs: map[string]string{"path": "/v", "masters": "a"}, err: "HOST:PORT"},
		{attrs: map[string]string{"path": "/v", "masters": "a:1,a:1"}, err: "twice"},
		{attrs: map[string]string{"path": "/v", "masters": "a:0"}, err: "port"},
		{attrs: map[string]string{"path": "/v", "cacheSize": "1K"}, err: "smaller than one cache block"},
		{attrs: map[string]string{"path": "/v", "readOnly": "yes please"}, err: "true or false"},
		{attrs: map[string]string{"path": "/v", "token": "secret"}, err: `unknown attribute "token"`},
	} {
		got, err := parseAttrs(tc.attrs, def)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: err %v, want one with %q", tc.attrs, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%v: the error echoes a value: %v", tc.attrs, err)
			}
			continue
		}
		if err != nil || got.Path != tc.want.Path || !slices.Equal(got.Masters, tc.want.Masters) || got.CacheSize != tc.want.CacheSize || got.ReadOnly != tc.want.ReadOnly {
			t.Errorf("%v: %+v, %v; want %+v", tc.attrs, got, err, tc.want)
		}
	}
	if _, err := parseAttrs(map[string]string{"path": "/v"}, nil); err == nil {
		t.Error("no masters anywhere: no error")
	}
}

func TestMountOptions(t *testing.T) {
	got, err := mountOptions([]string{"ro", "attr_timeout=1,entry_timeout=500ms"})
	if err != nil || !slices.Equal(got, []string{"ro", "attr_timeout=1", "entry_timeout=500ms"}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"token_file=/etc/shadow", "cache_dir=/x", "ro=1", "attr_timeout", "log_level=a b", "nosuchopt"} {
		if _, err := mountOptions([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCheckCapability(t *testing.T) {
	mount := func(fs string, mode csipb.VolumeCapability_AccessMode_Mode) *csipb.VolumeCapability {
		return &csipb.VolumeCapability{
			AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{FsType: fs}},
			AccessMode: &csipb.VolumeCapability_AccessMode{Mode: mode},
		}
	}
	if err := checkCapability(mount("", csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)); err != nil {
		t.Error(err)
	}
	block := &csipb.VolumeCapability{AccessType: &csipb.VolumeCapability_Block{Block: &csipb.VolumeCapability_BlockVolume{}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	for name, vc := range map[string]*csipb.VolumeCapability{
		"nil": nil, "block": block, "ext4": mount("ext4", csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER),
		"unknown mode": mount("", csipb.VolumeCapability_AccessMode_UNKNOWN),
	} {
		if err := checkCapability(vc); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCreateParams(t *testing.T) {
	attrs, mode, err := createParams(map[string]string{"cacheSize": "64M", "readOnly": "false", "mode": "0750", "csi.storage.k8s.io/pvc/name": "data"})
	if err != nil || mode != 0o750 || attrs["cacheSize"] != "64M" || attrs["readOnly"] != "false" || len(attrs) != 2 {
		t.Errorf("got %v, %o, %v", attrs, mode, err)
	}
	if _, mode, _ := createParams(nil); mode != defaultVolumeMode {
		t.Errorf("default mode %o", mode)
	}
	for _, bad := range []map[string]string{{"mode": "9"}, {"mode": "17777"}, {"cacheSize": "x"}, {"basePath": "/"}} {
		if _, _, err := createParams(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestOwnVolume(t *testing.T) {
	s := &controllerServer{d: &Driver{cfg: Config{BasePath: "/k8s/volumes"}}}
	for id, want := range map[string]bool{
		"/k8s/volumes/pvc-1": true, "/k8s/volumes": false, "/k8s/volumes/a/b": false, "/k8s/volumes/../x": false,
		"/": false, "pvc-1": false, "/k8s/volumes/pvc-1/": false, "/other/pvc-1": false,
	} {
		if got := s.ownVolume(id); got != want {
			t.Errorf("ownVolume(%q) = %v", id, got)
		}
	}
}

func TestCredentialsFromSecrets(t *testing.T) {
	c, err := credentialsFromSecrets(map[string]string{"token": " tok\n", "other": "x"})
	if err != nil || string(c.Token) != "tok" || c.tlsEnabled() {
		t.Errorf("got %+v, %v", c, err)
	}
	_, err = credentialsFromSecrets(map[string]string{"tls.key": "KEYMATERIAL"})
	if status.Code(err) != codes.InvalidArgument || strings.Contains(err.Error(), "KEYMATERIAL") {
		t.Errorf("partial TLS: %v", err)
	}
}

func TestMountdArgs(t *testing.T) {
	rec := &record{Target: "/t", CacheDir: "/c", Attrs: volumeAttrs{Path: "/v", Masters: []string{"a:1", "b:2"}, CacheSize: 64 << 20},
		ReadOnly: true, Options: []string{"attr_timeout=0"}}
	cred := Credentials{Token: []byte("TOKEN"), CA: []byte("CA"), Cert: []byte("CERT"), Key: []byte("KEY")}
	args := mountdArgs(rec, cred, time.Minute)
	want := []string{"--ready-fd", "3", "--cache-dir", "/c", "--mount-timeout", "1m0s", "--cache-size", "67108864",
		"--token-file", "/proc/self/fd/4", "--tls-ca-file", "/proc/self/fd/5", "--tls-cert-file", "/proc/self/fd/6", "--tls-key-file", "/proc/self/fd/7",
		"-o", "attr_timeout=0", "--ro", "a:1,b:2:/v", "/t"}
	if !slices.Equal(args, want) {
		t.Errorf("args\n%q\nwant\n%q", args, want)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestRecords(t *testing.T) {
	dir := t.TempDir()
	r := &record{VolumeID: "/v/a", Target: "/pods/x/vol", PID: 12, StartTime: 34, Attrs: volumeAttrs{Path: "/v/a", Masters: []string{"a:1"}}}
	if err := saveRecord(dir+"/"+targetKey(r.Target), r); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := loadRecords(dir)
	if err != nil || len(bad) != 0 || len(recs) != 1 || !recs[r.Target].compatible(r) || recs[r.Target].PID != 12 {
		t.Fatalf("got %v, %v, %v", recs, bad, err)
	}
	// A record under another target's key is not trusted.
	if err := saveRecord(dir+"/"+targetKey("/elsewhere"), r); err != nil {
		t.Fatal(err)
	}
	if _, bad, _ := loadRecords(dir); len(bad) != 1 {
		t.Errorf("misplaced record: bad %v", bad)
	}
}

func TestMountdEnv(t *testing.T) {
	got := mountdEnv([]string{"PATH=/bin", "SKYFS_TOKEN_FILE=/etc/skyfs/admin.token", "HOME=/root"})
	if !slices.Equal(got, []string{"PATH=/bin", "HOME=/root"}) {
		t.Errorf("got %v", got)
	}
}
