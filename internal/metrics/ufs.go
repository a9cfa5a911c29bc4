package metrics

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skyfs/skyfs/ufs"
)

// UFS operations, the values of the op label of the UFS metrics.
const (
	opStat   = "stat"
	opList   = "list"
	opOpen   = "open"
	opPut    = "put"
	opCreate = "create"
	opCommit = "commit" // Writer.Close: the end of a streaming upload
	opDelete = "delete"
	opRename = "rename"
	opCopy   = "copy"
	opMkdir  = "mkdir"
	opLink   = "link"
)

var ufsOps = []string{opStat, opList, opOpen, opPut, opCreate, opCommit, opDelete, opRename, opCopy, opMkdir, opLink}

// UFS holds the metrics of UFS calls:
//
//	skyfs_ufs_calls_total{scheme,op}
//	skyfs_ufs_errors_total{scheme,op,kind}     kind: not_found, stale, canceled, other
//	skyfs_ufs_call_duration_seconds{scheme,op} (a read's is until the reader
//	                                            is returned; a commit's is the
//	                                            close of a streaming upload)
//	skyfs_ufs_read_bytes_total{scheme}
//	skyfs_ufs_written_bytes_total{scheme}
//	skyfs_ufs_uploads_in_progress{scheme}      Puts and streaming uploads
//	                                            not yet finished
type UFS struct {
	calls    *prometheus.CounterVec
	errs     *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	read     *prometheus.CounterVec
	written  *prometheus.CounterVec
	progress *prometheus.GaugeVec
}

// NewUFS returns the UFS metrics, registered in reg.
func NewUFS(reg prometheus.Registerer) *UFS {
	m := &UFS{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "calls_total",
			Help: "UFS calls, by URI scheme and operation.",
		}, []string{"scheme", "op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "errors_total",
			Help: "UFS calls that failed, by URI scheme, operation and kind (not_found, stale, canceled, other).",
		}, []string{"scheme", "op", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "call_duration_seconds",
			Help:    "Latency of UFS calls, by URI scheme and operation.",
			Buckets: LatencyBuckets,
		}, []string{"scheme", "op"}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "read_bytes_total",
			Help: "Bytes read from the UFS.",
		}, []string{"scheme"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "written_bytes_total",
			Help: "Bytes written to the UFS.",
		}, []string{"scheme"}),
		progress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "ufs", Name: "uploads_in_progress",
			Help: "Uploads to the UFS (Put and streaming writes) not yet finished.",
		}, []string{"scheme"}),
	}
	reg.MustRegister(m.calls, m.errs, m.latency, m.read, m.written, m.progress)
	return m
}

// SchemeOf returns the scheme of a UFS URI ("s3", "file", "hdfs"), or
// "other" for anything that is not a short plain scheme: only the scheme
// of a URI may become a label.
func SchemeOf(uri string) string {
	s, _, ok := strings.Cut(uri, "://")
	if !ok || s == "" || len(s) > 16 {
		return "other"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return "other"
		}
	}
	return strings.ToLower(s)
}

// opMetrics are the label-resolved metrics of one operation of one scheme.
type opMetrics struct {
	calls   prometheus.Counter
	latency prometheus.Observer
}

// schemeMetrics are the label-resolved metrics of one scheme.
type schemeMetrics struct {
	m        *UFS
	scheme   string
	ops      map[string]opMetrics
	read     prometheus.Counter
	written  prometheus.Counter
	progress prometheus.Gauge
}

// Wrap returns fsys counting its calls under scheme (see SchemeOf). The
// result implements ufs.ConditionalOpener, and ufs.Linker when fsys does.
// A nil UFS returns fsys itself.
func (m *UFS) Wrap(fsys ufs.FileSystem, scheme string) ufs.FileSystem {
	if m == nil || fsys == nil {
		return fsys
	}
	sm := &schemeMetrics{
		m: m, scheme: scheme, ops: make(map[string]opMetrics, len(ufsOps)),
		read:     m.read.WithLabelValues(scheme),
		written:  m.written.WithLabelValues(scheme),
		progress: m.progress.WithLabelValues(scheme),
	}
	for _, op := range ufsOps {
		sm.ops[op] = opMetrics{calls: m.calls.WithLabelValues(scheme, op), latency: m.latency.WithLabelValues(scheme, op)}
	}
	w := &meteredFS{fs: fsys, sm: sm}
	if l, ok := fsys.(ufs.Linker); ok {
		return &meteredLinker{meteredFS: w, l: l}
	}
	return w
}

// done records one call of op that started at start.
func (sm *schemeMetrics) done(op string, start time.Time, err error) {
	om := sm.ops[op]
	om.calls.Inc()
	om.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		kind := "other"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			kind = "not_found"
		case errors.Is(err, ufs.ErrStale):
			kind = "stale"
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			kind = "canceled"
		}
		sm.m.errs.WithLabelValues(sm.scheme, op, kind).Inc()
	}
}

// meteredFS is a ufs.FileSystem that counts its calls.
type meteredFS struct {
	fs ufs.FileSystem
	sm *schemeMetrics
}

var _ ufs.ConditionalOpener = (*meteredFS)(nil)

func (w *meteredFS) Stat(ctx context.Context, path string) (ufs.FileInfo, error) {
	start := time.Now()
	fi, err := w.fs.Stat(ctx, path)
	w.sm.done(opStat, start, err)
	return fi, err
}

func (w *meteredFS) List(ctx context.Context, dir string, opts ufs.ListOptions) (ufs.Page, error) {
	start := time.Now()
	p, err := w.fs.List(ctx, dir, opts)
	w.sm.done(opList, start, err)
	return p, err
}

func (w *meteredFS) Open(ctx context.Context, path string, offset, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := w.fs.Open(ctx, path, offset, length)
	w.sm.done(opOpen, start, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: w.sm.read}, nil
}

func (w *meteredFS) OpenIf(ctx context.Context, path string, offset, length int64, want ufs.Fingerprint) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := ufs.OpenIf(ctx, w.fs, path, offset, length, want)
	w.sm.done(opOpen, start, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: w.sm.read}, nil
}

func (w *meteredFS) Put(ctx context.Context, path string, r io.Reader, size int64) (ufs.Fingerprint, error) {
	start := time.Now()
	w.sm.progress.Inc()
	fp, err := w.fs.Put(ctx, path, r, size)
	w.sm.progress.Dec()
	w.sm.done(opPut, start, err)
	if err == nil {
		w.sm.written.Add(float64(size))
	}
	return fp, err
}

func (w *meteredFS) Create(ctx context.Context, path string) (ufs.Writer, error) {
	start := time.Now()
	wr, err := w.fs.Create(ctx, path)
	w.sm.done(opCreate, start, err)
	if err != nil {
		return nil, err
	}
	w.sm.progress.Inc()
	return &countingWriter{w: wr, sm: w.sm}, nil
}

func (w *meteredFS) Delete(ctx context.Context, path string) error {
	start := time.Now()
	err := w.fs.Delete(ctx, path)
	w.sm.done(opDelete, start, err)
	return err
}

func (w *meteredFS) Rename(ctx context.Context, src, dst string) error {
	start := time.Now()
	err := w.fs.Rename(ctx, src, dst)
	w.sm.done(opRename, start, err)
	return err
}

func (w *meteredFS) Copy(ctx context.Context, src, dst string) (ufs.Fingerprint, error) {
	start := time.Now()
	fp, err := w.fs.Copy(ctx, src, dst)
	w.sm.done(opCopy, start, err)
	return fp, err
}

func (w *meteredFS) Mkdir(ctx context.Context, path string) error {
	start := time.Now()
	err := w.fs.Mkdir(ctx, path)
	w.sm.done(opMkdir, start, err)
	return err
}

func (w *meteredFS) Capabilities() ufs.Capabilities { return w.fs.Capabilities() }

func (w *meteredFS) Close() error { return w.fs.Close() }

// meteredLinker is a meteredFS over a FileSystem that makes hard links.
type meteredLinker struct {
	*meteredFS
	l ufs.Linker
}

var _ ufs.Linker = (*meteredLinker)(nil)

func (w *meteredLinker) Link(ctx context.Context, oldPath, newPath string) error {
	start := time.Now()
	err := w.l.Link(ctx, oldPath, newPath)
	w.sm.done(opLink, start, err)
	return err
}

// countingReader counts the bytes read from a UFS reader.
type countingReader struct {
	rc io.ReadCloser
	n  prometheus.Counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.n.Add(float64(n))
	}
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }

// countingWriter counts the bytes of a streaming upload and its end.
type countingWriter struct {
	w     ufs.Writer
	sm    *schemeMetrics
	ended atomic.Bool
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.sm.written.Add(float64(n))
	}
	return n, err
}

func (w *countingWriter) end() {
	if w.ended.CompareAndSwap(false, true) {
		w.sm.progress.Dec()
	}
}

func (w *countingWriter) Close() (ufs.Fingerprint, error) {
	start := time.Now()
	fp, err := w.w.Close()
	w.sm.done(opCommit, start, err)
	w.end()
	return fp, err
}

func (w *countingWriter) Abort() error {
	err := w.w.Abort()
	w.end()
	return err
}
