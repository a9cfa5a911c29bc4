package csi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// stateFile is the name of a mount's record in its state directory.
const stateFile = "state.json"

// record is what the node plugin knows of one published volume, persisted
// as StateDir/<key>/state.json so that a restarted plugin finds the mount
// daemon again. It holds no secret.
type record struct {
	VolumeID string      `json:"volume_id"`
	Target   string      `json:"target"`
	Attrs    volumeAttrs `json:"attrs"`
	// AccessMode is the access mode published with (CSI's enum name).
	AccessMode string `json:"access_mode"`
	ReadOnly   bool   `json:"read_only"`
	// Options are the mount flags passed to mountd with -o.
	Options []string `json:"options,omitempty"`
	// PID and StartTime identify the mount daemon: its process id and its
	// start time in clock ticks after boot (/proc/PID/stat), which tells it
	// from a later process that reuses the id.
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	// Args are mountd's arguments (paths and options; secrets are passed as
	// descriptors, never here).
	Args     []string `json:"args"`
	CacheDir string   `json:"cache_dir"`
	LogFile  string   `json:"log_file"`
}

// compatible says whether a publish of the same target asks for what r
// already has.
func (r *record) compatible(o *record) bool {
	return r.VolumeID == o.VolumeID && r.Attrs.Path == o.Attrs.Path &&
		strings.Join(r.Attrs.Masters, ",") == strings.Join(o.Attrs.Masters, ",") &&
		r.Attrs.CacheSize == o.Attrs.CacheSize && r.ReadOnly == o.ReadOnly &&
		strings.Join(r.Options, ",") == strings.Join(o.Options, ",")
}

// targetKey is the name of a target's state and cache directories.
func targetKey(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:10])
}

// saveRecord writes r into dir atomically.
func saveRecord(dir string, r *record) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// loadRecords reads every record under stateDir, keyed by target. A record
// that cannot be read is reported in bad and skipped.
func loadRecords(stateDir string) (recs map[string]*record, bad []error, err error) {
	recs = map[string]*record{}
	ents, err := os.ReadDir(stateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return recs, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("state: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		p := filepath.Join(stateDir, e.Name(), stateFile)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			bad = append(bad, err)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.Target == "" || targetKey(r.Target) != e.Name() {
			bad = append(bad, fmt.Errorf("%s: not a record of this plugin", p))
			continue
		}
		recs[r.Target] = &r
	}
	return recs, bad, nil
}

// procStartTime returns the start time of process pid (clock ticks after
// boot) and whether it is a zombie.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields after it follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return 0, false, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	return start, f[0] == "Z", nil
}

// alive says whether r's mount daemon still runs.
func (r *record) alive() bool {
	if r.PID <= 0 {
		return false
	}
	start, zombie, err := procStartTime(r.PID)
	return err == nil && !zombie && start == r.StartTime
}

// isMountPoint says whether dir is a mount point in this process's mount
// namespace (/proc/self/mountinfo).
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
