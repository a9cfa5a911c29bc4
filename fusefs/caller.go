package fusefs

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strconv"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// requestCaller returns who a request comes from, with the supplementary
// groups of its process: what the master's ownership rules need (changing a
// file's group to one of the caller's, keeping S_ISGID). FUSE passes only
// uid, gid and pid; the groups come from /proc. Root's requests need none.
func requestCaller(ctx context.Context) Caller {
	c := callerOf(ctx)
	if fc, ok := fuse.FromContext(ctx); ok && c.UID != 0 {
		c.Groups = groupsOf(fc.Pid, c.UID)
	}
	return c
}

// groupsOf returns the supplementary groups of process pid from the Groups
// line of /proc/PID/status, or nil when the process is gone or its
// effective uid is not uid (a request squashed from root's, or a pid that
// was reused): then only the caller's own gid counts.
func groupsOf(pid, uid uint32) []uint32 {
	if pid == 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	var groups []uint32
	uidOK := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("Uid:")):
			// Real, effective, saved and file-system uids.
			f := bytes.Fields(line[len("Uid:"):])
			uidOK = len(f) > 1 && string(f[1]) == strconv.FormatUint(uint64(uid), 10)
		case bytes.HasPrefix(line, []byte("Groups:")):
			for _, f := range bytes.Fields(line[len("Groups:"):]) {
				g, err := strconv.ParseUint(string(f), 10, 32)
				if err != nil {
					return nil
				}
				groups = append(groups, uint32(g))
			}
		}
	}
	if !uidOK {
		return nil
	}
	return groups
}
