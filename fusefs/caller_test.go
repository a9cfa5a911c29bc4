package fusefs

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// TestGroupsOf: the supplementary groups of a process come from /proc, and
// only for the uid the request names.
func TestGroupsOf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting a process with other groups needs root")
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65533, 65531}}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid := uint32(cmd.Process.Pid)
	if g := groupsOf(pid, 65534); !slices.Equal(g, []uint32{65531, 65533}) {
		t.Fatalf("groupsOf = %v, want [65531 65533] (sorted, as /proc lists them)", g)
	}
	if g := groupsOf(pid, 0); g != nil {
		t.Fatalf("groupsOf with another uid = %v, want none", g)
	}
	if g := groupsOf(0, 65534); g != nil {
		t.Fatalf("groupsOf(0) = %v, want none", g)
	}
}
