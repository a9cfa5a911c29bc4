package cli

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// optionList is a repeatable --option k=v flag.
type optionList struct{ m *map[string]string }

func (f optionList) String() string {
	if f.m == nil || *f.m == nil {
		return ""
	}
	return fmt.Sprintf("%d options", len(*f.m)) // never the values: they may be secret
}

func (f optionList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("option %q: want key=value", k)
	}
	if *f.m == nil {
		*f.m = make(map[string]string)
	}
	(*f.m)[k] = v
	return nil
}

var mountCmd = &command{
	name:    "mount",
	args:    "PATH URI",
	summary: "mount a UFS (s3://bucket/prefix, file:///dir, hdfs://nn/path) at PATH",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.Var(optionList{&o.options}, "option", "UFS option `key=value` (repeatable), e.g. s3.endpoint=http://host:9000")
		fs.StringVar(&o.sec.optionFile, "option-file", "", "root-only `file` of UFS options, key=value lines, under --option: for credentials, which --option shows in the process list")
		fs.BoolVar(&o.readOnly, "readonly", false, "refuse every change under the mount")
		fs.DurationVar(&o.syncInterval, "sync-interval", 0, "reload a directory from the UFS on access when its listing is older than this (0: never)")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 2 {
			return usagef("mount: want PATH URI")
		}
		if r.o.syncInterval < 0 {
			return usagef("mount: negative --sync-interval")
		}
		if err := r.o.sec.mergeOptionFile(&r.o.options); err != nil {
			return fmt.Errorf("mount %s: %w", args[0], err)
		}
		m, err := r.c.AddMount(ctx, &pb.AddMountRequest{
			Caller: caller(), Path: args[0], Uri: args[1], Options: r.o.options,
			ReadOnly: r.o.readOnly, SyncIntervalNs: int64(r.o.syncInterval),
		})
		if err != nil {
			return fmt.Errorf("mount %s: %w", args[0], err)
		}
		if r.o.output == "json" {
			return r.printJSON(mountToJSON(m))
		}
		fmt.Fprintf(r.env.Stdout, "mounted %s at %s (mount %d)\n", m.Uri, m.Path, m.Id)
		return nil
	},
}

var unmountCmd = &command{
	name:    "unmount",
	args:    "PATH",
	summary: "remove the mount at PATH from the namespace (the UFS keeps its data)",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 1 {
			return usagef("unmount: want PATH")
		}
		// The record, to say what was unmounted; the removal decides
		// whether there is a mount at PATH.
		var m *pb.Mount
		if ms, err := r.c.ListMounts(ctx); err == nil {
			for _, x := range ms {
				if x.Path == path.Clean(args[0]) {
					m = x
				}
			}
		}
		if err := r.c.RemoveMount(ctx, 0, args[0]); err != nil {
			return fmt.Errorf("unmount %s: %w", args[0], err)
		}
		if r.o.output == "json" {
			out := struct {
				Path string `json:"path"`
				ID   uint64 `json:"id,omitempty"`
				URI  string `json:"uri,omitempty"`
			}{Path: args[0]}
			if m != nil {
				out.Path, out.ID, out.URI = m.Path, m.Id, m.Uri
			}
			return r.printJSON(out)
		}
		if m == nil {
			fmt.Fprintf(r.env.Stdout, "unmounted %s\n", args[0])
			return nil
		}
		fmt.Fprintf(r.env.Stdout, "unmounted %s from %s (mount %d); the UFS keeps its data\n", m.Uri, m.Path, m.Id)
		return nil
	},
}

// mountJSON is one mount in JSON output; secret options are redacted by the
// master.
type mountJSON struct {
	ID           uint64            `json:"id"`
	Path         string            `json:"path"`
	URI          string            `json:"uri"`
	ReadOnly     bool              `json:"read_only"`
	SyncInterval string            `json:"sync_interval"`
	Options      map[string]string `json:"options,omitempty"`
	RootIno      uint64            `json:"root_ino"`
	Created      string            `json:"created"`
}

func mountToJSON(m *pb.Mount) mountJSON {
	return mountJSON{
		ID: m.Id, Path: m.Path, URI: m.Uri, ReadOnly: m.ReadOnly,
		SyncInterval: time.Duration(m.SyncIntervalNs).String(), Options: m.Options,
		RootIno: m.RootIno, Created: stamp(m.CreatedNs),
	}
}

var mountsCmd = &command{
	name:    "mounts",
	summary: "list the UFS mount table (secrets redacted)",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef("mounts: unexpected argument %q", args[0])
		}
		ms, err := r.c.ListMounts(ctx)
		if err != nil {
			return fmt.Errorf("mounts: %w", err)
		}
		if r.o.output == "json" {
			out := []mountJSON{}
			for _, m := range ms {
				out = append(out, mountToJSON(m))
			}
			return r.printJSON(out)
		}
		tw := tabwriter.NewWriter(r.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPATH\tURI\tMODE\tSYNC\tOPTIONS")
		for _, m := range ms {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			var opts []string
			for _, k := range slices.Sorted(maps.Keys(m.Options)) {
				opts = append(opts, k+"="+m.Options[k])
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\n", m.Id, m.Path, m.Uri, mode, time.Duration(m.SyncIntervalNs), strings.Join(opts, ","))
		}
		return tw.Flush()
	},
}

var syncCmd = &command{
	name:    "sync",
	args:    "PATH",
	summary: "reload the metadata of PATH from its UFS (a subtree with --recursive)",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.recursive, "recursive", false, "sync every directory below PATH too")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 1 {
			return usagef("sync: want PATH")
		}
		start := time.Now()
		tty, shown := isTerminal(r.env.Stderr), false
		p, err := r.c.Sync(ctx, args[0], r.o.recursive, func(p *pb.SyncProgress) {
			if r.o.output == "json" {
				return
			}
			took := time.Since(start)
			line := fmt.Sprintf("sync %s: %d directories, %d entries so far, %.0f entries/s (%v)",
				args[0], p.Directories, p.Entries, float64(p.Entries)/max(took.Seconds(), 1e-3), took.Round(time.Second))
			if tty {
				// One line redrawn in place, cleared when the sync ends.
				fmt.Fprintf(r.env.Stderr, "\r%s\x1b[K", line)
				shown = true
				return
			}
			fmt.Fprintln(r.env.Stderr, line)
		})
		if shown {
			fmt.Fprint(r.env.Stderr, "\r\x1b[K")
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", args[0], err)
		}
		if r.o.output == "json" {
			return r.printJSON(struct {
				Path        string  `json:"path"`
				Directories uint64  `json:"directories"`
				Entries     uint64  `json:"entries"`
				Added       uint64  `json:"added"`
				Removed     uint64  `json:"removed"`
				Updated     uint64  `json:"updated"`
				Skipped     uint64  `json:"skipped"`
				Seconds     float64 `json:"seconds"`
			}{args[0], p.Directories, p.Entries, p.Added, p.Removed, p.Updated, p.Skipped, time.Since(start).Seconds()})
		}
		fmt.Fprintf(r.env.Stdout, "synced %s: %d directories, %d entries, %d added, %d removed, %d updated",
			args[0], p.Directories, p.Entries, p.Added, p.Removed, p.Updated)
		if p.Skipped > 0 {
			fmt.Fprintf(r.env.Stdout, ", %d names skipped", p.Skipped)
		}
		fmt.Fprintf(r.env.Stdout, " in %v\n", time.Since(start).Round(time.Millisecond))
		return nil
	},
}
