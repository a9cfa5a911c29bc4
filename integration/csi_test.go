package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
	"github.com/skyfs/skyfs/internal/secrets"
)

// The CSI plugin binary, built on first use next to mountd (where it looks
// for mountd).
var csiBin struct {
	once sync.Once
	path string
	err  error
}

func needCSI(t *testing.T) string {
	t.Helper()
	mountd, _ := needMountd(t)
	csiBin.once.Do(func() {
		csiBin.path = filepath.Join(filepath.Dir(mountd), "skyfs-csi")
		cmd := exec.Command("go", "build", "-o", csiBin.path, "github.com/skyfs/skyfs/cmd/csi")
		if out, err := cmd.CombinedOutput(); err != nil {
			csiBin.err = fmt.Errorf("build csi: %v\n%s", err, out)
		}
	})
	if csiBin.err != nil {
		t.Fatal(csiBin.err)
	}
	return csiBin.path
}

// csiEnv is a cluster with token authentication, a local UFS mounted at
// /k8s, and the state of CSI plugins that serve it.
type csiEnv struct {
	t                           *testing.T
	c                           *cluster
	dir, sock, stateDir, caches string
	mountToken                  string
	logPath                     string
}

// newCSIEnv starts three masters that require tokens and prepares a plugin
// directory. The mount daemons the plugins leave are stopped at the end.
func newCSIEnv(t *testing.T) *csiEnv {
	t.Helper()
	needCSI(t)
	dir := t.TempDir()
	admin, mount := secrets.NewToken(), secrets.NewToken()
	adminFile, mountFile := filepath.Join(dir, "admin.token"), filepath.Join(dir, "mount.token")
	for f, tok := range map[string][]byte{adminFile: admin, mountFile: mount} {
		if err := secrets.WriteFile(f, tok); err != nil {
			t.Fatal(err)
		}
	}
	e := &csiEnv{
		t: t, dir: dir, sock: filepath.Join(dir, "csi.sock"),
		stateDir: filepath.Join(dir, "state"), caches: filepath.Join(dir, "cache"),
		mountToken: string(mount), logPath: filepath.Join(dir, "csi.log"),
	}
	e.c = newCluster(t, 3, "--admin-token-file", adminFile, "--mount-token-file", mountFile)
	addLocalMount(t, e.c, "/k8s", nil)
	t.Cleanup(e.cleanup)
	return e
}

// plugin is one run of the CSI plugin.
type plugin struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// start runs the plugin (controller and node) and waits until it answers
// on its socket.
func (e *csiEnv) start() *plugin {
	e.t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(needCSI(e.t), "--mode", "all", "--endpoint", "unix://"+e.sock,
		"--node-id", "node-1", "--masters", strings.Join(e.c.rpcAddrs(), ","),
		"--base-path", "/k8s/volumes", "--state-dir", e.stateDir, "--cache-root", e.caches,
		"--mount-timeout", "30s", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		e.t.Fatal(err)
	}
	p := &plugin{cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	e.t.Cleanup(func() { p.stop(e.t) })
	eventually(e.t, 30*time.Second, func() error {
		select {
		case <-p.exited:
			return fmt.Errorf("the plugin exited: %s", tail(readFile(e.logPath), 4<<10))
		default:
		}
		conn, err := net.Dial("unix", e.sock)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	return p
}

// stop ends the plugin with SIGTERM (a no-op once it has exited).
func (p *plugin) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("the CSI plugin did not stop within 20s of SIGTERM")
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// kill SIGKILLs the plugin.
func (p *plugin) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// stateRecord is the part of the plugin's record the tests read.
type stateRecord struct {
	VolumeID string   `json:"volume_id"`
	Target   string   `json:"target"`
	PID      int      `json:"pid"`
	Args     []string `json:"args"`
	LogFile  string   `json:"log_file"`
}

// records reads the plugin's records of its mount daemons.
func (e *csiEnv) records() []stateRecord {
	files, _ := filepath.Glob(filepath.Join(e.stateDir, "*", "state.json"))
	var out []stateRecord
	for _, f := range files {
		var r stateRecord
		if err := json.Unmarshal([]byte(readFile(f)), &r); err != nil {
			e.t.Errorf("%s: %v", f, err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// cleanup detaches the mounts of daemons still running, which then exit,
// and prints the logs if the test failed.
func (e *csiEnv) cleanup() {
	for _, r := range e.records() {
		forceUnmount(r.Target)
		if e.t.Failed() {
			e.t.Logf("---- mountd log of %s ----\n%s", r.Target, tail(readFile(r.LogFile), 8<<10))
		}
		if r.PID > 0 {
			if fd, err := pidfdOpen(r.PID); err == nil {
				waitPidfd(fd, 20*time.Second)
			}
		}
	}
	if e.t.Failed() || os.Getenv("SKYFS_TEST_LOGS") != "" {
		e.t.Logf("---- CSI plugin log ----\n%s", tail(readFile(e.logPath), 32<<10))
	}
}

// TestCSISanity runs the Kubernetes project's CSI sanity suite against the
// plugin serving controller and node on one socket, over three masters and
// real FUSE mounts.
func TestCSISanity(t *testing.T) {
	e := newCSIEnv(t)
	e.start()
	secretsFile := filepath.Join(e.dir, "secrets.yaml")
	var y strings.Builder
	for _, k := range []string{"CreateVolumeSecret", "DeleteVolumeSecret", "ControllerValidateVolumeCapabilitiesSecret", "NodePublishVolumeSecret"} {
		fmt.Fprintf(&y, "%s:\n  token: %q\n", k, e.mountToken)
	}
	if err := os.WriteFile(secretsFile, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + e.sock
	cfg.TargetPath = filepath.Join(e.dir, "target")
	cfg.StagingPath = filepath.Join(e.dir, "staging")
	cfg.SecretsFile = secretsFile
	cfg.TestVolumeParameters = map[string]string{"cacheSize": "64M"}
	cfg.IdempotentCount = 3
	sanity.Test(t, cfg)

	// Every volume the suite made is deleted, every mount gone.
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("records left after the suite: %+v", recs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := e.c.client(client.Config{})
	if left := listAll(ctx, t, cl, "/k8s/volumes"); len(left) != 0 {
		t.Errorf("volumes left under /k8s/volumes: %v", left)
	}
	if strings.Contains(readFile(e.logPath), e.mountToken) {
		t.Error("the plugin's log holds the mount token")
	}
}

// TestCSIRestart: a mount outlives the plugin that started it, and the next
// run of the plugin finds its daemon, answers a repeated publish from it and
// unpublishes it; the token reaches no command line, record or log.
func TestCSIRestart(t *testing.T) {
	e := newCSIEnv(t)
	p := e.start()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn := dialCSI(t, e.sock)
	ctrl, node := csipb.NewControllerClient(conn), csipb.NewNodeClient(conn)
	sec := map[string]string{"token": e.mountToken}
	vc := &csipb.VolumeCapability{
		AccessType: &csipb.VolumeCapability_Mount{Mount: &csipb.VolumeCapability_MountVolume{MountFlags: []string{"attr_timeout=0"}}},
		AccessMode: &csipb.VolumeCapability_AccessMode{Mode: csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER},
	}
	vol, err := ctrl.CreateVolume(ctx, &csipb.CreateVolumeRequest{Name: "pvc-restart", VolumeCapabilities: []*csipb.VolumeCapability{vc}, Secrets: sec})
	if err != nil {
		t.Fatal(err)
	}
	if id := vol.GetVolume().GetVolumeId(); id != "/k8s/volumes/pvc-restart" {
		t.Fatalf("volume id %q", id)
	}
	// A wrong token: the publish fails with the mount daemon's reason and
	// leaves no daemon, record or mount behind.
	bad := filepath.Join(e.dir, "pods", "pod-0", "vol")
	_, err = node.NodePublishVolume(ctx, &csipb.NodePublishVolumeRequest{
		VolumeId: vol.GetVolume().GetVolumeId(), TargetPath: bad, VolumeCapability: vc,
		VolumeContext: vol.GetVolume().GetVolumeContext(), Secrets: map[string]string{"token": "skyfs_not-the-token"},
	})
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("publish with a wrong token: %v", err)
	}
	if recs := e.records(); len(recs) != 0 || mounted(bad) {
		t.Errorf("after a failed publish: records %+v, mounted %v", recs, mounted(bad))
	}
	// Without secrets the controller uses its own credentials: none here.
	_, err = ctrl.ValidateVolumeCapabilities(ctx, &csipb.ValidateVolumeCapabilitiesRequest{VolumeId: vol.GetVolume().GetVolumeId(), VolumeCapabilities: []*csipb.VolumeCapability{vc}})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("validate without a token: %v, want Unauthenticated", err)
	}

	target := filepath.Join(e.dir, "pods", "pod-1", "vol")
	publish := &csipb.NodePublishVolumeRequest{
		VolumeId: vol.GetVolume().GetVolumeId(), TargetPath: target, VolumeCapability: vc,
		VolumeContext: vol.GetVolume().GetVolumeContext(), Secrets: sec,
	}
	if _, err := node.NodePublishVolume(ctx, publish); err != nil {
		t.Fatal(err)
	}
	data := []byte("written before the plugin died\n")
	if err := os.WriteFile(filepath.Join(target, "a.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	recs := e.records()
	if len(recs) != 1 || recs[0].Target != target || recs[0].PID <= 0 {
		t.Fatalf("records %+v", recs)
	}
	pid := recs[0].PID
	cmdline := readFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	stateFiles, _ := filepath.Glob(filepath.Join(e.stateDir, "*", "*"))
	for _, f := range append(stateFiles, "/proc/"+strconv.Itoa(pid)+"/environ") {
		if strings.Contains(readFile(f), e.mountToken) {
			t.Errorf("%s holds the mount token", f)
		}
	}
	if strings.Contains(cmdline, e.mountToken) {
		t.Error("mountd's command line holds the mount token")
	}

	// The plugin dies; the mount serves on.
	conn.Close()
	p.kill()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("mountd died with the plugin: %v", err)
	}
	checkContent(t, filepath.Join(target, "a.txt"), data)

	// The next run finds it: a repeated publish is answered by the same
	// daemon, and unpublish stops it.
	e.start()
	conn = dialCSI(t, e.sock)
	node = csipb.NewNodeClient(conn)
	ctrl = csipb.NewControllerClient(conn)
	if !strings.Contains(readFile(e.logPath), "found a mount daemon") {
		t.Error("the restarted plugin did not report the daemon it found")
	}
	if _, err := node.NodePublishVolume(ctx, publish); err != nil {
		t.Fatal(err)
	}
	if recs := e.records(); len(recs) != 1 || recs[0].PID != pid {
		t.Fatalf("after a repeated publish: records %+v, want the daemon %d", recs, pid)
	}
	stats, err := node.NodeGetVolumeStats(ctx, &csipb.NodeGetVolumeStatsRequest{VolumeId: publish.VolumeId, VolumePath: target})
	if err != nil || len(stats.GetUsage()) != 2 {
		t.Fatalf("stats: %v, %v", stats, err)
	}
	fd, err := pidfdOpen(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.NodeUnpublishVolume(ctx, &csipb.NodeUnpublishVolumeRequest{VolumeId: publish.VolumeId, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if !waitPidfd(fd, 0) {
		t.Error("mountd still runs after NodeUnpublishVolume answered")
	}
	if mounted(target) {
		t.Error("the target is still mounted")
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the target still exists: %v", err)
	}
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
	// The data reached the namespace; deleting the volume removes it.
	cl := e.c.client(client.Config{})
	if a, err := cl.Stat(ctx, "/k8s/volumes/pvc-restart/a.txt"); err != nil || a.GetSize() != uint64(len(data)) {
		t.Fatalf("stat through the masters: %v, %v", a, err)
	}
	if _, err := ctrl.DeleteVolume(ctx, &csipb.DeleteVolumeRequest{VolumeId: publish.VolumeId, Secrets: sec}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Stat(ctx, "/k8s/volumes/pvc-restart"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("the volume's directory after DeleteVolume: %v, want ENOENT", err)
	}
}

// dialCSI connects to the plugin's socket.
func dialCSI(t *testing.T, sock string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// pidfdOpen opens a pidfd of process pid.
func pidfdOpen(pid int) (int, error) { return unix.PidfdOpen(pid, 0) }

// waitPidfd waits up to timeout for the process of a pidfd to exit, says
// whether it has, and closes the pidfd.
func waitPidfd(fd int, timeout time.Duration) bool {
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(0, time.Until(deadline).Milliseconds())))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n > 0
	}
}
