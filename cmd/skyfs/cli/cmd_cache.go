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
)

var cacheStatsCmd = &command{
	name:    "cache stats",
	args:    "--admin-addr HOST:PORT",
	summary: "show a mount daemon's block cache: size, files, blocks, hits, misses, traffic",
	help: `The figures come from the mount daemon's admin port (mountd --admin-addr or
-o admin_addr=), read from its Prometheus /metrics. Counters (hits, misses,
bytes, evictions, corrupt blocks) count since the daemon started; capacity,
used bytes, files and blocks are the cache's current state.`,
	local: true,
	flags: func(fs *flag.FlagSet, o *opts) {
		fs.StringVar(&o.admin, "admin-addr", "", "`host:port` (or http://host:port) of the mount daemon's admin port")
	},
	run: runCacheStats,
}

// cacheStatsJSON is the output of skyfs cache stats. Blocks is absent when
// the daemon does not export it.
type cacheStatsJSON struct {
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
	if len(args) != 0 {
		return usagef("cache stats: unexpected argument %q", args[0])
	}
	addr := r.o.admin
	if addr == "" {
		return usagef("cache stats: --admin-addr is required (the mount daemon's admin_addr)")
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
	for _, row := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
