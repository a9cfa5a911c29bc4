package mountd

import (
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyfs/skyfs/cache"
	"github.com/skyfs/skyfs/fusefs"
	"github.com/skyfs/skyfs/internal/metrics"
	"github.com/skyfs/skyfs/ufs"
)

// The admin port (admin_addr=, --admin-addr; off by default) serves
// Prometheus metrics on /metrics and, with pprof (--pprof), the profiles
// of net/http/pprof under /debug/pprof/. Beyond the UFS metrics of package
// metrics (skyfs_ufs_*: calls, errors, latency, bytes, uploads in
// progress) and the Go runtime's:
//
//	skyfs_fuse_op_duration_seconds{op}   every FUSE request but Forget
//	skyfs_fuse_op_errors_total{op}       requests answered with an errno
//	                                     other than ENOENT and ENODATA
//	skyfs_fuse_open_handles, skyfs_fuse_releases_in_progress
//	skyfs_fuse_reads_total, skyfs_fuse_passthrough_opens_total
//	skyfs_cache_hits_total, skyfs_cache_misses_total
//	skyfs_cache_read_bytes_total{source}  source: cache, ufs
//	skyfs_cache_loads_total, skyfs_cache_readaheads_total
//	skyfs_cache_evictions_total, skyfs_cache_corrupt_blocks_total
//	skyfs_cache_bypasses_total, skyfs_cache_store_drops_total, skyfs_cache_used_bytes,
//	skyfs_cache_capacity_bytes, skyfs_cache_entries
//	skyfs_cache_blocks, skyfs_cache_block_size_bytes

// admin is the admin port of a mount daemon: taken before mounting, served
// once the mount is up. A nil *admin (no admin_addr) measures nothing.
type admin struct {
	reg     *prometheus.Registry
	ufs     *metrics.UFS
	latency [fusefs.NumOps]prometheus.Observer
	errs    [fusefs.NumOps]prometheus.Counter
	lis     net.Listener
	pprof   bool
	srv     *metrics.AdminServer
}

// listenAdmin takes the admin port of cfg, if any.
func listenAdmin(cfg *Config) (*admin, error) {
	if cfg.AdminAddr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("admin_addr: %w", err)
	}
	reg := metrics.NewRegistry()
	a := &admin{reg: reg, ufs: metrics.NewUFS(reg), lis: lis, pprof: cfg.Pprof}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace, Subsystem: "fuse", Name: "op_duration_seconds",
		Help: "Latency of the FUSE requests served, by operation.", Buckets: metrics.LatencyBuckets,
	}, []string{"op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "fuse", Name: "op_errors_total",
		Help: "FUSE requests answered with an error other than ENOENT and ENODATA, by operation.",
	}, []string{"op"})
	reg.MustRegister(latency, errs)
	for op := fusefs.Op(0); op < fusefs.NumOps; op++ {
		a.latency[op] = latency.WithLabelValues(op.String())
		a.errs[op] = errs.WithLabelValues(op.String())
	}
	return a, nil
}

// observe is fusefs's Options.Observe.
func (a *admin) observe(op fusefs.Op, took time.Duration, errno syscall.Errno) {
	if op >= fusefs.NumOps {
		return
	}
	a.latency[op].Observe(took.Seconds())
	if errno != 0 && errno != syscall.ENOENT && errno != syscall.ENODATA {
		a.errs[op].Inc()
	}
}

// fuseObserver is fusefs's Options.Observe (nil without an admin port).
func (a *admin) fuseObserver() func(fusefs.Op, time.Duration, syscall.Errno) {
	if a == nil {
		return nil
	}
	return a.observe
}

// ufsWrapper wraps the UFSs the mount opens (nil without an admin port).
func (a *admin) ufsWrapper() func(ufs.FileSystem, string) ufs.FileSystem {
	if a == nil {
		return nil
	}
	return func(fsys ufs.FileSystem, uri string) ufs.FileSystem {
		return a.ufs.Wrap(fsys, metrics.SchemeOf(uri))
	}
}

// start serves the admin port once the mount is up.
func (a *admin) start(c *cache.Cache, srv *fusefs.Mounted, logger *slog.Logger) {
	if a == nil {
		return
	}
	a.reg.MustRegister(&cacheCollector{c: c}, &mountCollector{m: srv})
	a.srv = metrics.ServeAdmin(a.lis, metrics.AdminMux(a.reg, a.pprof), logger)
	logger.Info("mountd: admin port", "addr", a.lis.Addr().String(), "pprof", a.pprof)
}

// close stops the admin port.
func (a *admin) close() {
	if a == nil {
		return
	}
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	} else if a.lis != nil {
		a.lis.Close()
	}
	a.lis = nil
}

func desc(sub, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, sub, name), help, labels, nil)
}

var (
	descHits       = desc("cache", "hits_total", "Block reads served from the cache.")
	descHotHits    = desc("cache", "hot_hits_total", "Of the hits, block reads served from the blocks loaded last, in memory.")
	descMisses     = desc("cache", "misses_total", "Block reads that had to load the block.")
	descReadBytes  = desc("cache", "read_bytes_total", "Bytes returned by the cache, by source: cache files or UFS loads (read-ahead included).", "source")
	descLoads      = desc("cache", "loads_total", "Block loads from the UFS.")
	descReadAheads = desc("cache", "readaheads_total", "Background block loads started.")
	descEvictions  = desc("cache", "evictions_total", "Blocks evicted to make room.")
	descCorrupt    = desc("cache", "corrupt_blocks_total", "Blocks that failed verification and were dropped.")
	descBypasses   = desc("cache", "bypasses_total", "Loaded blocks that could not be stored.")
	descStoreDrops = desc("cache", "store_drops_total", "Loaded blocks not stored because the store queue was full (the disk fell behind).")
	descUsed       = desc("cache", "used_bytes", "Disk space used by the cache.")
	descCapacity   = desc("cache", "capacity_bytes", "Disk space the cache may use.")
	descEntries    = desc("cache", "entries", "Files known to the cache.")
	descBlocks     = desc("cache", "blocks", "Blocks holding data in the cache files.")
	descBlockSize  = desc("cache", "block_size_bytes", "Size of a cache block.")

	descHandles   = desc("fuse", "open_handles", "File handles open.")
	descReleasing = desc("fuse", "releases_in_progress", "Last closes of files written here still in progress (they may upload).")
	descReads     = desc("fuse", "reads_total", "FUSE read requests served by the daemon.")
	descPTOpens   = desc("fuse", "passthrough_opens_total", "Opens answered with FUSE passthrough (reads bypass the daemon).")
)

// cacheCollector reads cache.Stats when scraped.
type cacheCollector struct{ c *cache.Cache }

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descHotHits, descMisses, descReadBytes, descLoads, descReadAheads, descEvictions,
		descCorrupt, descBypasses, descStoreDrops, descUsed, descCapacity, descEntries, descBlocks, descBlockSize} {
		ch <- d
	}
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(descHits, float64(st.Hits))
	counter(descHotHits, float64(st.HotHits))
	counter(descMisses, float64(st.Misses))
	counter(descReadBytes, float64(st.BytesFromCache), "cache")
	counter(descReadBytes, float64(st.BytesLoaded), "ufs")
	counter(descLoads, float64(st.LoaderCalls))
	counter(descReadAheads, float64(st.ReadAheads))
	counter(descEvictions, float64(st.Evictions))
	counter(descCorrupt, float64(st.CorruptBlocks))
	counter(descBypasses, float64(st.Bypasses))
	counter(descStoreDrops, float64(st.StoreDrops))
	gauge(descUsed, float64(st.Used))
	gauge(descCapacity, float64(st.Capacity))
	gauge(descEntries, float64(st.Entries))
	gauge(descBlocks, float64(st.Blocks))
	gauge(descBlockSize, float64(st.BlockSize))
}

// mountCollector reads fusefs's MountStats when scraped.
type mountCollector struct{ m *fusefs.Mounted }

func (mc *mountCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHandles, descReleasing, descReads, descPTOpens} {
		ch <- d
	}
}

func (mc *mountCollector) Collect(ch chan<- prometheus.Metric) {
	st := mc.m.Stats()
	ch <- prometheus.MustNewConstMetric(descHandles, prometheus.GaugeValue, float64(st.OpenHandles))
	ch <- prometheus.MustNewConstMetric(descReleasing, prometheus.GaugeValue, float64(st.Releasing))
	ch <- prometheus.MustNewConstMetric(descReads, prometheus.CounterValue, float64(st.Reads))
	ch <- prometheus.MustNewConstMetric(descPTOpens, prometheus.CounterValue, float64(st.PassthroughOpens))
}
