package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	pb "github.com/skyfs/skyfs/proto/skyfspb"
)

// fileJSON is one inode in JSON output.
type fileJSON struct {
	Path    string `json:"path,omitempty"`
	Name    string `json:"name,omitempty"`
	Ino     uint64 `json:"ino"`
	Type    string `json:"type"`
	Mode    string `json:"mode"`
	UID     uint32 `json:"uid"`
	GID     uint32 `json:"gid"`
	Size    uint64 `json:"size"`
	Nlink   uint32 `json:"nlink"`
	Atime   string `json:"atime"`
	Mtime   string `json:"mtime"`
	Ctime   string `json:"ctime"`
	Target  string `json:"target,omitempty"`
	MountID uint64 `json:"mount_id,omitempty"`
	Pending bool   `json:"pending,omitempty"`
}

func typeName(t pb.FileType) string {
	switch t {
	case pb.FileType_REGULAR:
		return "file"
	case pb.FileType_DIRECTORY:
		return "dir"
	case pb.FileType_SYMLINK:
		return "symlink"
	case pb.FileType_FIFO:
		return "fifo"
	case pb.FileType_SOCKET:
		return "socket"
	case pb.FileType_CHAR_DEVICE:
		return "char"
	case pb.FileType_BLOCK_DEVICE:
		return "block"
	}
	return "unknown"
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

func toJSON(p, name string, a *pb.Attr) fileJSON {
	return fileJSON{
		Path: p, Name: name, Ino: a.Ino, Type: typeName(a.Type), Mode: fmt.Sprintf("%04o", a.Mode),
		UID: a.Uid, GID: a.Gid, Size: a.Size, Nlink: a.Nlink,
		Atime: stamp(a.AtimeNs), Mtime: stamp(a.MtimeNs), Ctime: stamp(a.CtimeNs),
		Target: string(a.SymlinkTarget), MountID: a.MountId, Pending: a.Pending,
	}
}

// modeString renders type and permissions as ls does.
func modeString(a *pb.Attr) string {
	m := fs.FileMode(a.Mode & 0o777)
	if a.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if a.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if a.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch a.Type {
	case pb.FileType_DIRECTORY:
		m |= fs.ModeDir
	case pb.FileType_SYMLINK:
		m |= fs.ModeSymlink
	}
	// ls's letter for the type; fs.FileMode's own differ for some.
	letters := map[pb.FileType]string{
		pb.FileType_SYMLINK: "l", pb.FileType_FIFO: "p", pb.FileType_SOCKET: "s",
		pb.FileType_CHAR_DEVICE: "c", pb.FileType_BLOCK_DEVICE: "b",
	}
	s := m.String()
	if l, ok := letters[a.Type]; ok {
		s = l + s[len(s)-9:]
	}
	return s
}

var lsCmd = &command{
	name:    "ls",
	args:    "PATH...",
	summary: "list directories (a file lists itself)",
	help: "Entries are printed as the directory's pages arrive from the master, so a listing of\n" +
		"millions of names starts at once and holds one page at a time; -l aligns its columns\n" +
		"1,024 entries at a time.",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.long, "l", false, "long listing: type, mode, links, owner, size, mtime")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) == 0 {
			args = []string{"/"}
		}
		out := newLsPrinter(r)
		for i, p := range args {
			a, err := r.c.Stat(ctx, p)
			if err != nil {
				out.flush()
				return fmt.Errorf("ls %s: %w", p, err)
			}
			if r.o.output != "json" && len(args) > 1 {
				if i > 0 {
					out.line("")
				}
				out.line(p + ":")
			}
			if a.Type != pb.FileType_DIRECTORY {
				out.entry(toJSON(p, path.Base(p), a), a)
				out.endDir()
				continue
			}
			for e, err := range r.c.List(ctx, p, 0, r.o.long || r.o.output == "json") {
				if err != nil {
					out.flush()
					return fmt.Errorf("ls %s: %w", p, err)
				}
				ea := e.Attr
				if ea == nil {
					ea = &pb.Attr{Ino: e.Ino, Type: e.Type}
				}
				out.entry(toJSON(path.Join(p, string(e.Name)), string(e.Name), ea), ea)
			}
			out.endDir()
		}
		return out.close()
	},
}

// lsChunk is how many entries ls holds before it writes them out: a listing
// of millions of names starts printing after its first page and holds at
// most one chunk (a long listing aligns its columns chunk by chunk).
const lsChunk = 1024

// lsPrinter writes ls's output as the entries arrive: names one per line, a
// long listing in aligned chunks, JSON as one array written element by
// element (the same text as encoding/json's indented encoding of the whole
// list).
type lsPrinter struct {
	r     *runner
	w     *bufio.Writer
	names []fileJSON
	attrs []*pb.Attr
	n     int // JSON elements written
	err   error
}

func newLsPrinter(r *runner) *lsPrinter {
	return &lsPrinter{r: r, w: bufio.NewWriterSize(r.env.Stdout, 64<<10)}
}

// line writes one line of text.
func (o *lsPrinter) line(s string) {
	o.w.WriteString(s)
	o.w.WriteByte('\n')
}

// entry takes one entry of the listing.
func (o *lsPrinter) entry(e fileJSON, a *pb.Attr) {
	switch {
	case o.r.o.output == "json":
		b, err := json.MarshalIndent(e, "  ", "  ")
		if err != nil {
			o.err = cmp.Or(o.err, err)
			return
		}
		if o.n == 0 {
			o.w.WriteString("[\n  ")
		} else {
			o.w.WriteString(",\n  ")
		}
		o.w.Write(b)
		o.n++
		if o.n%lsChunk == 0 {
			o.flush()
		}
	case !o.r.o.long:
		o.line(e.Name)
		if o.w.Buffered() >= 32<<10 {
			o.flush()
		}
	default:
		o.names, o.attrs = append(o.names, e), append(o.attrs, a)
		if len(o.names) == lsChunk {
			o.endDir()
		}
	}
}

// endDir writes out what is held, at the end of a directory or a chunk.
func (o *lsPrinter) endDir() {
	if len(o.names) > 0 {
		o.r.printEntries(o.w, o.names, o.attrs)
		o.names, o.attrs = o.names[:0], o.attrs[:0]
	}
	o.flush()
}

func (o *lsPrinter) flush() {
	if err := o.w.Flush(); err != nil {
		o.err = cmp.Or(o.err, err)
	}
}

// close ends the output.
func (o *lsPrinter) close() error {
	if o.r.o.output == "json" {
		if o.n == 0 {
			o.w.WriteString("[]\n")
		} else {
			o.w.WriteString("\n]\n")
		}
	}
	o.endDir()
	return o.err
}

func (r *runner) printEntries(w io.Writer, entries []fileJSON, attrs []*pb.Attr) {
	if !r.o.long {
		for _, e := range entries {
			fmt.Fprintln(w, e.Name)
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.AlignRight)
	for i, e := range entries {
		a := attrs[i]
		name := e.Name
		if a.Type == pb.FileType_SYMLINK {
			name += " -> " + string(a.SymlinkTarget)
		}
		mtime := time.Unix(0, a.MtimeNs).UTC().Format("2006-01-02 15:04")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t %s\t %s\n", modeString(a), a.Nlink, a.Uid, a.Gid, a.Size, mtime, name)
	}
	tw.Flush()
}

var statCmd = &command{
	name:    "stat",
	args:    "PATH...",
	summary: "show the attributes of paths (symlinks not followed)",
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) == 0 {
			return usagef("stat: no path given")
		}
		var out []fileJSON
		for i, p := range args {
			a, err := r.c.Stat(ctx, p)
			if err != nil {
				return fmt.Errorf("stat %s: %w", p, err)
			}
			if r.o.output == "json" {
				out = append(out, toJSON(p, "", a))
				continue
			}
			if i > 0 {
				fmt.Fprintln(r.env.Stdout)
			}
			w := r.env.Stdout
			fmt.Fprintf(w, "  Path: %s\n", p)
			if a.Type == pb.FileType_SYMLINK {
				fmt.Fprintf(w, "Target: %s\n", a.SymlinkTarget)
			}
			fmt.Fprintf(w, " Inode: %d\n  Type: %s\n  Mode: %04o (%s)\n", a.Ino, typeName(a.Type), a.Mode, modeString(a))
			fmt.Fprintf(w, "   Uid: %d\n   Gid: %d\n  Size: %d\n Links: %d\n", a.Uid, a.Gid, a.Size, a.Nlink)
			fmt.Fprintf(w, "Access: %s\nModify: %s\nChange: %s\n", stamp(a.AtimeNs), stamp(a.MtimeNs), stamp(a.CtimeNs))
			if a.MountId != 0 {
				fmt.Fprintf(w, " Mount: %d\n", a.MountId)
			}
		}
		if r.o.output == "json" {
			if len(out) == 1 {
				return r.printJSON(out[0])
			}
			return r.printJSON(out)
		}
		return nil
	},
}

// caller is the local user, recorded as owner of what the CLI creates.
func caller() *pb.Caller {
	return &pb.Caller{Uid: uint32(syscall.Getuid()), Gid: uint32(syscall.Getgid())}
}

var mkdirCmd = &command{
	name:    "mkdir",
	args:    "PATH...",
	summary: "create directories",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.parents, "p", false, "create missing parents; an existing directory is no error")
		fs.UintVar(&o.mode, "m", 0o755, "permission bits (octal, e.g. 0750)")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) == 0 {
			return usagef("mkdir: no path given")
		}
		if r.o.mode > 0o7777 {
			return usagef("mkdir: mode %o has bits outside 07777", r.o.mode)
		}
		for _, p := range args {
			if err := r.mkdir(ctx, p); err != nil {
				return fmt.Errorf("mkdir %s: %w", p, err)
			}
		}
		return nil
	},
}

func (r *runner) mkdir(ctx context.Context, p string) error {
	if !r.o.parents {
		_, err := r.c.Mkdir(ctx, &pb.MkdirRequest{Path: p, Mode: uint32(r.o.mode), Caller: caller()})
		return err
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path is not absolute: %w", syscall.EINVAL)
	}
	cur := ""
	for c := range strings.SplitSeq(p, "/") {
		if c == "" {
			continue
		}
		cur += "/" + c
		_, err := r.c.Mkdir(ctx, &pb.MkdirRequest{Path: cur, Mode: uint32(r.o.mode), Caller: caller()})
		if errors.Is(err, syscall.EEXIST) {
			a, serr := r.c.Stat(ctx, cur)
			if serr != nil {
				return serr
			}
			if a.Type != pb.FileType_DIRECTORY {
				return fmt.Errorf("%s: %w", cur, syscall.ENOTDIR)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var rmCmd = &command{
	name:    "rm",
	args:    "PATH...",
	summary: "remove files, symlinks and (with -r) directories",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.recursive, "r", false, "remove directories and their contents")
		fs.BoolVar(&o.force, "f", false, "ignore paths that do not exist")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) == 0 {
			return usagef("rm: no path given")
		}
		for _, p := range args {
			err := r.remove(ctx, p)
			if r.o.force && errors.Is(err, syscall.ENOENT) {
				continue
			}
			if err != nil {
				return fmt.Errorf("rm %s: %w", p, err)
			}
		}
		return nil
	},
}

func (r *runner) remove(ctx context.Context, p string) error {
	a, err := r.c.Stat(ctx, p)
	if err != nil {
		return err
	}
	if a.Type != pb.FileType_DIRECTORY {
		_, err := r.c.Unlink(ctx, &pb.UnlinkRequest{Path: p})
		return err
	}
	if !r.o.recursive {
		return fmt.Errorf("is a directory (use -r): %w", syscall.EISDIR)
	}
	for {
		// Remove a page at a time, listing again from the start: the listing
		// shrinks as it goes.
		page, err := r.c.ReadDir(ctx, &pb.ReadDirRequest{Path: p, Limit: 512})
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if err := r.remove(ctx, path.Join(p, string(e.Name))); err != nil && !errors.Is(err, syscall.ENOENT) {
				return err
			}
		}
		if !page.More {
			break
		}
	}
	_, err = r.c.Rmdir(ctx, &pb.RmdirRequest{Path: p})
	return err
}

var mvCmd = &command{
	name:    "mv",
	args:    "SRC DST",
	summary: "rename or move an entry (into DST when DST is a directory)",
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.BoolVar(&o.noReplace, "no-replace", false, "fail if DST exists (RENAME_NOREPLACE)")
		fs.BoolVar(&o.exchange, "exchange", false, "swap SRC and DST atomically (RENAME_EXCHANGE)")
	},
	run: func(ctx context.Context, r *runner, args []string) error {
		if len(args) != 2 {
			return usagef("mv: want SRC and DST, got %d arguments", len(args))
		}
		if r.o.noReplace && r.o.exchange {
			return usagef("mv: --no-replace and --exchange exclude each other")
		}
		src, dst := args[0], args[1]
		var flags uint32
		switch {
		case r.o.exchange:
			flags = 2
		case r.o.noReplace:
			flags = 1
		}
		if !r.o.exchange {
			// Like mv(1): into an existing directory.
			if a, err := r.c.Stat(ctx, dst); err == nil && a.Type == pb.FileType_DIRECTORY && strings.Trim(src, "/") != "" {
				dst = path.Join(dst, path.Base(src))
			}
		}
		if _, err := r.c.Rename(ctx, &pb.RenameRequest{OldPath: src, NewPath: dst, Flags: flags}); err != nil {
			return fmt.Errorf("mv %s %s: %w", src, dst, err)
		}
		return nil
	},
}
