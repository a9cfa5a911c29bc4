package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/skyfs/skyfs/internal/bytesize"
	"github.com/skyfs/skyfs/internal/metrics"
	"github.com/skyfs/skyfs/internal/mountctl"
)

var cacheStatsCmd = &command{
	name:    "cache stats",
	args:    "[PATH | --admin-addr HOST:PORT]",
	summary: "show a mount daemon's block cache: size, files, blocks, hits, misses, traffic",
	help: `Without --admin-addr the figures come from the mount daemon on this host
that serves PATH (a local path in its mount, or a namespace path it mounts),
through its control socket; without PATH, from the only mount daemon on this
host (skyfs status lists them all). With --admin-addr they come from a mount
daemon's admin port (mountd --admin-addr or -o admin_addr=), read from its
Prometheus /metrics, on this host or another. Counters (hits, misses,
bytes, evictions, corrupt blocks) count since the daemon started; capacity,
used bytes, files and blocks are the cache's current state.`,
	local: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.admin, "admin-addr", "", "`host:port` (or http://host:port) of the mount daemon's admin port")
	},
	run: runCacheStats,
}

var cacheDropCmd = &command{
	name:    "cache drop",
	args:    "[PATH...] [--to SIZE]",
	summary: "empty the block cache of this host's mount daemons, or of PATH, or shrink it to SIZE",
	help: `Without PATH every mount daemon on this host drops its whole block cache.
PATH (a local path in a skyfs mount, or a namespace path that a mount of
this host serves) drops the cached files at or under it only, in the mount
daemon serving it, including those of UFS mounts below it. With --to SIZE
(e.g. 2G, 0) the daemons evict their least recently used blocks until their
cache uses at most SIZE; PATH must then be a mount point. The capacity does
not change: the cache fills again as files are read. Reads going on meanwhile
are not disturbed (they fetch what they need again), and a file open for
passthrough reads keeps its content until closed. The daemons are reached
through their control sockets in $SKYFS_RUN_DIR (default /run/skyfs), which
only root may use.`,
	local: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.dropTo, "to", "", "shrink to at most `SIZE` (K, M, G, T suffixes) instead of dropping everything")
	},
	run: runCacheDrop,
}

// dropJSON is one daemon's outcome in skyfs cache drop --output json.
type dropJSON struct {
	MountPoint string `json:"mount_point"`
	Path       string `json:"path,omitempty"` // the namespace path dropped; empty: all
	Files      int    `json:"files"`
	Blocks     int64  `json:"blocks"`
	UsedBytes  int64  `json:"used_bytes"`
	// Pinned: files open for passthrough reads kept usage above --to.
	Pinned bool `json:"pinned,omitempty"`
}

func runCacheDrop(ctx context.Context, r *runner, args []string) error {
	var to *int64
	if r.o.dropTo != "" {
		n, err := parseSize(r.o.dropTo)
		if err != nil {
			return usagef("cache drop: --to %q: %v", r.o.dropTo, err)
		}
		to = &n
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	found, err := r.daemons(ctx)
	if err != nil {
		return fmt.Errorf("cache drop: %w", err)
	}
	type job struct {
		d   *mountctl.Found
		req mountctl.DropRequest
	}
	var jobs []job
	if len(args) == 0 {
		if len(found) == 0 {
			return fmt.Errorf("cache drop: no skyfs mount daemon on this host (none in %s)", mountctl.RunDir(r.env.Getenv))
		}
		for i := range found {
			jobs = append(jobs, job{&found[i], mountctl.DropRequest{To: to}})
		}
	}
	// Every PATH is resolved before anything is dropped.
	for _, a := range args {
		t, err := r.resolveHost(found, a)
		if err != nil {
			return fmt.Errorf("cache drop: %w", err)
		}
		if t.d == nil {
			return fmt.Errorf("cache drop: %s is not in a skyfs mount of this host", a)
		}
		req := mountctl.DropRequest{Path: t.nsPath, To: to}
		if t.nsPath == t.d.Info.Path {
			req.Path = "" // the whole mount
		} else if to != nil {
			return usagef("cache drop: --to shrinks a whole cache: %s is not a mount point", a)
		}
		jobs = append(jobs, job{t.d, req})
	}
	var out []dropJSON
	for _, j := range jobs {
		res, err := j.d.Drop(ctx, j.req)
		if err != nil {
			return fmt.Errorf("cache drop: %s: %w", j.d.Info.MountPoint, err)
		}
		out = append(out, dropJSON{MountPoint: j.d.Info.MountPoint, Path: j.req.Path, Files: res.Files,
			Blocks: res.Blocks, UsedBytes: res.UsedBytes, Pinned: res.Pinned})
	}
	if r.o.output == "json" {
		return r.printJSON(out)
	}
	for _, o := range out {
		what := "the cache"
		if o.Path != "" {
			what = "the cache of " + o.Path
		}
		fmt.Fprintf(r.env.Stdout, "%s: dropped %s: %d files, %d blocks; %s used now\n",
			o.MountPoint, what, o.Files, o.Blocks, bytesize.Format(o.UsedBytes))
		if o.Pinned {
			fmt.Fprintf(r.env.Stdout, "%s: files open for passthrough reads keep it above %s until they are closed\n", o.MountPoint, r.o.dropTo)
		}
	}
	return nil
}

// cacheStatsJSON is the output of skyfs cache stats. Blocks is absent when
// the daemon does not export it.
type cacheStatsJSON struct {
	// MountPoint is set when the figures come from this host's daemon.
	MountPoint     string `json:"mount_point,omitempty"`
	CapacityBytes  int64  `json:"capacity_bytes"`
	UsedBytes      int64  `json:"used_bytes"`
	Files          int64  `json:"files"`
	Blocks         *int64 `json:"blocks,omitempty"`
	BlockSize      *int64 `json:"block_size,omitempty"`
	Hits           int64  `json:"hits"`
	Misses         int64  `json:"misses"`
	BytesFromCache int64  `json:"bytes_from_cache"`
	BytesFromUFS   int64  `json:"bytes_from_ufs"`
	Loads          int64  `json:"ufs_loads"`
	ReadAheads     int64  `json:"readaheads"`
	Evictions      int64  `json:"evictions"`
	CorruptBlocks  int64  `json:"corrupt_blocks"`
	Bypasses       int64  `json:"bypasses"`
}

func runCacheStats(ctx context.Context, r *runner, args []string) error {
	addr := r.o.admin
	switch {
	case addr != "" && len(args) > 0:
		return usagef("cache stats: unexpected argument %q (give PATH or --admin-addr)", args[0])
	case len(args) > 1:
		return usagef("cache stats: unexpected argument %q (one PATH)", args[1])
	case addr == "":
		return r.cacheStatsLocal(ctx, args)
	}
	url := strings.TrimSuffix(addr, "/")
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		url = "http://" + url
	}
	if !strings.HasSuffix(url, "/metrics") {
		url += "/metrics"
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usagef("cache stats: --admin-addr %q: %v", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cache stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cache stats: %s: %s", url, resp.Status)
	}
	samples, err := metrics.ParseText(resp.Body)
	if err != nil {
		return fmt.Errorf("cache stats: %s: %w", url, err)
	}
	st, err := cacheStatsFrom(samples)
	if err != nil {
		return fmt.Errorf("cache stats: %s: %w", url, err)
	}
	if r.o.output == "json" {
		return r.printJSON(st)
	}
	return printCacheStats(r.env.Stdout, st)
}

// cacheStatsLocal is skyfs cache stats [PATH] through a daemon's control
// socket.
func (r *runner) cacheStatsLocal(ctx context.Context, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.timeout)
	defer cancel()
	found, err := r.daemons(ctx)
	if err != nil {
		return fmt.Errorf("cache stats: %w", err)
	}
	var d *mountctl.Found
	switch {
	case len(args) == 1:
		t, err := r.resolveHost(found, args[0])
		if err != nil {
			return fmt.Errorf("cache stats: %w", err)
		}
		if t.d == nil {
			return fmt.Errorf("cache stats: %s is not in a skyfs mount of this host", args[0])
		}
		d = t.d
	case len(found) == 1:
		d = &found[0]
	case len(found) == 0:
		return usagef("cache stats: no skyfs mount daemon on this host: give --admin-addr of one")
	default:
		var mps []string
		for _, f := range found {
			mps = append(mps, f.Info.MountPoint)
		}
		return usagef("cache stats: %d mount daemons on this host (%s): give PATH", len(found), strings.Join(mps, ", "))
	}
	cs := d.Info.Cache
	st := cacheStatsJSON{
		MountPoint:    d.Info.MountPoint,
		CapacityBytes: cs.CapacityBytes, UsedBytes: cs.UsedBytes, Files: cs.Files,
		Blocks: &cs.Blocks, BlockSize: &cs.BlockSize, Hits: int64(cs.Hits), Misses: int64(cs.Misses),
		BytesFromCache: cs.BytesFromCache, BytesFromUFS: cs.BytesFromUFS, Loads: int64(cs.Loads),
		ReadAheads: int64(cs.ReadAheads), Evictions: int64(cs.Evictions), CorruptBlocks: int64(cs.CorruptBlocks),
		Bypasses: int64(cs.Bypasses),
	}
	if r.o.output == "json" {
		return r.printJSON(st)
	}
	return printCacheStats(r.env.Stdout, st)
}

// cacheStatsFrom picks the cache figures out of a mount daemon's metrics.
func cacheStatsFrom(samples map[string]float64) (cacheStatsJSON, error) {
	var missing []string
	get := func(name string) int64 {
		v, ok := samples[name]
		if !ok {
			missing = append(missing, name)
		}
		return int64(v)
	}
	opt := func(name string) *int64 {
		v, ok := samples[name]
		if !ok {
			return nil
		}
		n := int64(v)
		return &n
	}
	st := cacheStatsJSON{
		CapacityBytes:  get("skyfs_cache_capacity_bytes"),
		UsedBytes:      get("skyfs_cache_used_bytes"),
		Files:          get("skyfs_cache_entries"),
		Blocks:         opt("skyfs_cache_blocks"),
		BlockSize:      opt("skyfs_cache_block_size_bytes"),
		Hits:           get("skyfs_cache_hits_total"),
		Misses:         get("skyfs_cache_misses_total"),
		BytesFromCache: get(`skyfs_cache_read_bytes_total{source="cache"}`),
		BytesFromUFS:   get(`skyfs_cache_read_bytes_total{source="ufs"}`),
		Loads:          get("skyfs_cache_loads_total"),
		ReadAheads:     get("skyfs_cache_readaheads_total"),
		Evictions:      get("skyfs_cache_evictions_total"),
		CorruptBlocks:  get("skyfs_cache_corrupt_blocks_total"),
		Bypasses:       get("skyfs_cache_bypasses_total"),
	}
	if len(missing) > 0 {
		return st, fmt.Errorf("not a mount daemon's metrics: no %s", strings.Join(missing, ", "))
	}
	return st, nil
}

func printCacheStats(w io.Writer, st cacheStatsJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	pct := func(part, whole int64) string {
		if whole <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
	}
	num := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
	}
	blockSize := "-"
	if st.BlockSize != nil {
		blockSize = bytesize.Format(*st.BlockSize)
	}
	rows := [][2]string{
		{"capacity", fmt.Sprintf("%s (%d bytes)", bytesize.Format(st.CapacityBytes), st.CapacityBytes)},
		{"used", fmt.Sprintf("%s (%d bytes, %s of capacity)", bytesize.Format(st.UsedBytes), st.UsedBytes, pct(st.UsedBytes, st.CapacityBytes))},
		{"files", strconv.FormatInt(st.Files, 10)},
		{"blocks", num(st.Blocks) + " of " + blockSize},
		{"hits", fmt.Sprintf("%d (%s of block reads)", st.Hits, pct(st.Hits, st.Hits+st.Misses))},
		{"misses", strconv.FormatInt(st.Misses, 10)},
		{"bytes from cache", fmt.Sprintf("%s (%d bytes)", bytesize.Format(st.BytesFromCache), st.BytesFromCache)},
		{"bytes from UFS", fmt.Sprintf("%s (%d bytes)", bytesize.Format(st.BytesFromUFS), st.BytesFromUFS)},
		{"UFS loads", fmt.Sprintf("%d (%d read-ahead)", st.Loads, st.ReadAheads)},
		{"evictions", strconv.FormatInt(st.Evictions, 10)},
		{"corrupt blocks", strconv.FormatInt(st.CorruptBlocks, 10)},
		{"bypasses", strconv.FormatInt(st.Bypasses, 10)},
	}
	if st.MountPoint != "" {
		rows = append([][2]string{{"mount", st.MountPoint}}, rows...)
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
