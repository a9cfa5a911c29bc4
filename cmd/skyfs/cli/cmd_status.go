package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/mountctl"
)

var statusCmd = &command{
	name:    "status",
	summary: "one screen of the cluster and this host: masters, leader, lag, namespace, mounts, mount daemons and their caches",
	help: `Masters: each one's role, term, applied index and lag (how many committed
entries it has yet to apply, against the leader's commit index). Namespace:
inodes and UFS mounts, then the UFS mount table. This host: every mount
daemon found through its control socket ($SKYFS_RUN_DIR, default
/run/skyfs; root only) with its mount point, what it mounts, and its block
cache's use. Without --masters or $SKYFS_MASTERS the masters are those of
this host's mount daemons. What cannot be reached is reported and the rest
is shown; the exit code is then 1.`,
	local: true,
	run:   runStatus,
}

// statusMemberJSON is one master in skyfs status.
type statusMemberJSON struct {
	memberJSON
	// Lag is the leader's commit index minus this master's applied index.
	Lag *uint64 `json:"lag,omitempty"`
}

// daemonJSON is one of this host's mount daemons in skyfs status.
type daemonJSON struct {
	MountPoint string              `json:"mount_point"`
	Masters    []string            `json:"masters"`
	Path       string              `json:"path"`
	PID        int                 `json:"pid"`
	ReadOnly   bool                `json:"read_only"`
	Started    string              `json:"started"`
	AdminAddr  string              `json:"admin_addr,omitempty"`
	CacheDir   string              `json:"cache_dir"`
	Cache      mountctl.CacheStats `json:"cache"`
}

// statusJSON is the output of skyfs status.
type statusJSON struct {
	Leader        string             `json:"leader"`
	LeaderRPCAddr string             `json:"leader_rpc_addr"`
	Masters       []statusMemberJSON `json:"masters"`
	Inodes        uint64             `json:"inodes"`
	Mounts        []mountJSON        `json:"mounts"`
	MountDaemons  []daemonJSON       `json:"mount_daemons"`
	Errors        []string           `json:"errors,omitempty"`
}

func runStatus(ctx context.Context, r *runner, args []string) error {
	if len(args) != 0 {
		return usagef("status: unexpected argument %q", args[0])
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	out := statusJSON{Masters: []statusMemberJSON{}, Mounts: []mountJSON{}, MountDaemons: []daemonJSON{}}
	fail := func(what string, err error) { out.Errors = append(out.Errors, what+": "+oneLine(err)) }

	found, errs := mountctl.List(ctx, mountctl.RunDir(r.env.Getenv))
	for _, err := range errs {
		fail("mount daemon", err)
	}
	for _, f := range found {
		i := f.Info
		out.MountDaemons = append(out.MountDaemons, daemonJSON{
			MountPoint: i.MountPoint, Masters: i.Masters, Path: i.Path, PID: i.PID, ReadOnly: i.ReadOnly,
			Started: i.Started, AdminAddr: i.AdminAddr, CacheDir: i.CacheDir, Cache: i.Cache,
		})
	}
	masters := r.mastersList()
	if len(masters) == 0 && len(found) > 0 {
		masters = found[0].Info.Masters
	}
	if len(masters) == 0 {
		return usagef("status: no masters: give --masters host:port,... or set %s (no mount daemon on this host names them)", EnvMasters)
	}
	if err := r.connect(masters); err != nil {
		return err
	}
	defer r.c.Close()
	if st, err := r.c.Status(ctx); err != nil {
		fail("masters", err)
	} else {
		out.Leader, out.LeaderRPCAddr = st.LeaderId, st.LeaderRpcAddr
		var commit uint64
		for _, m := range st.Members {
			if m.Id == st.LeaderId && m.Error == "" {
				commit = m.CommitIndex
			}
		}
		for _, m := range st.Members {
			sm := statusMemberJSON{memberJSON: memberJSON{
				ID: m.Id, Role: m.Role, Voter: m.Voter, Term: m.Term, LastIndex: m.LastIndex,
				CommitIndex: m.CommitIndex, AppliedIndex: m.AppliedIndex, SnapshotIndex: m.LastSnapshotIndex,
				RPCAddr: m.RpcAddr, RaftAddr: m.RaftAddr, Error: m.Error,
			}}
			if commit > 0 && m.Error == "" {
				lag := commit - min(commit, m.AppliedIndex)
				sm.Lag = &lag
			}
			out.Masters = append(out.Masters, sm)
		}
	}
	if fs, err := r.c.StatFS(ctx); err != nil {
		fail("namespace", err)
	} else {
		out.Inodes = fs.Inodes
	}
	if ms, err := r.c.ListMounts(ctx); err != nil {
		fail("mounts", err)
	} else {
		for _, m := range ms {
			out.Mounts = append(out.Mounts, mountToJSON(m))
		}
	}

	if r.o.output == "json" {
		if err := r.printJSON(out); err != nil {
			return err
		}
	} else {
		printStatus(r.env.Stdout, &out)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("status: %s", strings.Join(out.Errors, "; "))
	}
	return nil
}

func printStatus(w io.Writer, s *statusJSON) {
	leader := s.Leader
	if leader == "" {
		leader = "none"
	} else if s.LeaderRPCAddr != "" {
		leader += " (" + s.LeaderRPCAddr + ")"
	}
	fmt.Fprintf(w, "Masters: %d, leader %s\n", len(s.Masters), leader)
	if len(s.Masters) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tROLE\tVOTER\tTERM\tCOMMIT\tAPPLIED\tLAG\tRPC")
		for _, m := range s.Masters {
			role, lag := m.Role, "-"
			if m.Error != "" {
				role = "unreachable (" + m.Error + ")"
			}
			if m.Lag != nil {
				lag = fmt.Sprint(*m.Lag)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%t\t%d\t%d\t%d\t%s\t%s\n", m.ID, role, m.Voter, m.Term, m.CommitIndex, m.AppliedIndex, lag, m.RPCAddr)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nNamespace: %d inodes, %d UFS mounts\n", s.Inodes, len(s.Mounts))
	if len(s.Mounts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tPATH\tURI\tMODE")
		for _, m := range s.Mounts {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", m.ID, m.Path, m.URI, mode)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nThis host: %d mount daemons\n", len(s.MountDaemons))
	if len(s.MountDaemons) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MOUNT POINT\tPATH\tPID\tUP\tCACHE USED\tFILES\tHITS")
		for _, d := range s.MountDaemons {
			c := d.Cache
			used := fmt.Sprintf("%s of %s", bytesize.Format(c.UsedBytes), bytesize.Format(c.CapacityBytes))
			if c.CapacityBytes > 0 {
				used += fmt.Sprintf(" (%.0f%%)", 100*float64(c.UsedBytes)/float64(c.CapacityBytes))
			}
			hits := "-"
			if c.Hits+c.Misses > 0 {
				hits = fmt.Sprintf("%.1f%%", 100*float64(c.Hits)/float64(c.Hits+c.Misses))
			}
			up := "-"
			if t, err := time.Parse(time.RFC3339, d.Started); err == nil {
				up = time.Since(t).Round(time.Second).String()
			}
			path := d.Path
			if d.ReadOnly {
				path += " (ro)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%d\t%s\n", d.MountPoint, path, d.PID, up, used, c.Files, hits)
		}
		tw.Flush()
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "\nunreachable: %s\n", e)
	}
}
