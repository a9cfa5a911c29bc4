package masterd

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/skyfs/skyfs/internal/metrics"
	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/raftjournal"
	"github.com/skyfs/skyfs/ufs"
)

// The admin port (--admin-addr) serves:
//
//	/          the status page (HTML): this master, the members, the mount
//	           table with secrets redacted, the namespace size, snapshots
//	/metrics   Prometheus metrics (below, and the RPC and UFS metrics of
//	           package metrics)
//	/debug/pprof/  with --pprof
//
// Metrics of the journal, read from raftjournal's Status and Stats when
// scraped:
//
//	skyfs_raft_role{role}            1 for this node's role, 0 for the others
//	skyfs_raft_serving               1 while this node serves as leader
//	skyfs_raft_term
//	skyfs_raft_last_log_index, skyfs_raft_commit_index, skyfs_raft_applied_index
//	skyfs_raft_members
//	skyfs_journal_entries_applied_total, skyfs_journal_batch_splits_total
//	skyfs_snapshot_index, skyfs_snapshot_size_bytes
//	skyfs_snapshot_age_seconds       since the newest snapshot was started
//	                                 (absent while there is none)
//	skyfs_snapshot_last_duration_seconds
//	skyfs_snapshots_total, skyfs_snapshot_failures_total, skyfs_snapshot_restores_total
//	skyfs_namespace_inodes, skyfs_namespace_mounts
//
// and of the apply path, observed on every batch raft applies:
//
//	skyfs_journal_apply_duration_seconds
//	skyfs_journal_apply_batch_logs      raft log entries per batch
//	skyfs_journal_apply_batch_entries   journal entries per batch

// adminMetrics are a master's metrics, made before the journal opens (it
// observes the apply path) and completed once it is open.
type adminMetrics struct {
	reg          *prometheus.Registry
	rpc          *metrics.RPC
	ufs          *metrics.UFS
	applyLatency prometheus.Histogram
	applyLogs    prometheus.Histogram
	applyEntries prometheus.Histogram
}

// batchBuckets are the buckets of batch sizes: 1 to 4096.
var batchBuckets = prometheus.ExponentialBuckets(1, 2, 13)

func newAdminMetrics() *adminMetrics {
	reg := metrics.NewRegistry()
	a := &adminMetrics{
		reg: reg,
		rpc: metrics.NewRPC(reg),
		ufs: metrics.NewUFS(reg),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "journal", Name: "apply_duration_seconds",
			Help: "Time to apply one batch of committed log entries to the store.", Buckets: metrics.LatencyBuckets,
		}),
		applyLogs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "journal", Name: "apply_batch_logs",
			Help: "Raft log entries per applied batch.", Buckets: batchBuckets,
		}),
		applyEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "journal", Name: "apply_batch_entries",
			Help: "Journal entries per applied batch (a log entry may carry many).", Buckets: batchBuckets,
		}),
	}
	reg.MustRegister(a.applyLatency, a.applyLogs, a.applyEntries)
	return a
}

// onApply is raftjournal's Config.OnApply.
func (a *adminMetrics) onApply(s raftjournal.ApplyStats) {
	a.applyLatency.Observe(s.Took.Seconds())
	a.applyLogs.Observe(float64(s.Logs))
	a.applyEntries.Observe(float64(s.Entries))
}

// serverOptions are the gRPC server options that time every RPC.
func (a *adminMetrics) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(a.rpc.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(a.rpc.StreamInterceptor()),
	}
}

// wrapUFS is master.Config.WrapUFS: it counts the calls of the leader's UFSs.
func (a *adminMetrics) wrapUFS(fsys ufs.FileSystem, uri string) ufs.FileSystem {
	return a.ufs.Wrap(fsys, metrics.SchemeOf(uri))
}

// adminFlags declares the flags of the admin port.
func adminFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "", "host:port of the admin HTTP port: status page, /metrics (empty: none)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve /debug/pprof on the admin port")
}

// checkAdmin checks the admin flags.
func (c *Config) checkAdmin() error {
	if c.AdminAddr == "" {
		if c.Pprof {
			return badConfig("--pprof needs --admin-addr")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
		return badConfig("--admin-addr %q: want host:port", c.AdminAddr)
	}
	return nil
}

// admin is the admin port of a master: its listener, taken before the
// journal opens so that a port in use is a configuration error, and the
// metrics the journal and the gRPC server feed. A nil *admin (no
// --admin-addr) measures nothing.
type admin struct {
	*adminMetrics
	lis    net.Listener
	pprof  bool
	srv    *metrics.AdminServer
	closed bool
}

// listenAdmin takes the admin port of cfg, if any.
func listenAdmin(cfg *Config) (*admin, error) {
	if cfg.AdminAddr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, badConfig("--admin-addr %s: %v", cfg.AdminAddr, errors.Unwrap(err))
	}
	return &admin{adminMetrics: newAdminMetrics(), lis: lis, pprof: cfg.Pprof}, nil
}

// applyHook is raftjournal's Config.OnApply (nil without an admin port).
func (a *admin) applyHook() func(raftjournal.ApplyStats) {
	if a == nil {
		return nil
	}
	return a.onApply
}

// ufsWrapper is master.Config.WrapUFS (nil without an admin port).
func (a *admin) ufsWrapper() func(ufs.FileSystem, string) ufs.FileSystem {
	if a == nil {
		return nil
	}
	return a.wrapUFS
}

// grpcOptions are the options of the gRPC server that time the RPCs.
func (a *admin) grpcOptions() []grpc.ServerOption {
	if a == nil {
		return nil
	}
	return a.serverOptions()
}

// start serves the admin port once the journal is open.
func (a *admin) start(node *raftjournal.Node, log *slog.Logger) {
	if a == nil {
		return
	}
	a.reg.MustRegister(&journalCollector{node: node})
	mux := metrics.AdminMux(a.reg, a.pprof)
	st := &statusPage{node: node, start: time.Now()}
	mux.Handle("GET /{$}", st)
	mux.Handle("GET /status", st)
	a.srv = metrics.ServeAdmin(a.lis, mux, log)
	log.Info("masterd: admin port", "addr", a.lis.Addr().String(), "pprof", a.pprof)
}

// close stops the admin port.
func (a *admin) close() {
	if a == nil || a.closed {
		return
	}
	a.closed = true
	if a.srv != nil {
		a.srv.Close()
	} else {
		a.lis.Close()
	}
}

// journal metric descriptions.
var (
	descRole         = desc("raft_role", "1 for this node's Raft role, 0 for the others.", "role")
	descServing      = desc("raft_serving", "1 while this node serves clients as the leader.")
	descTerm         = desc("raft_term", "Current Raft term.")
	descLastIndex    = desc("raft_last_log_index", "Index of the newest entry in the Raft log.")
	descCommitIndex  = desc("raft_commit_index", "Newest log index known committed.")
	descAppliedIndex = desc("raft_applied_index", "Newest log index applied to the store.")
	descMembers      = desc("raft_members", "Servers in the Raft configuration.")
	descEntries      = desc("journal_entries_applied_total", "Journal entries applied since start.")
	descSplits       = desc("journal_batch_splits_total", "Applied batches split because they outgrew a store transaction.")
	descSnapIndex    = desc("snapshot_index", "Last log index of the newest snapshot.")
	descSnapSize     = desc("snapshot_size_bytes", "Size of the newest snapshot.")
	descSnapAge      = desc("snapshot_age_seconds", "Time since the newest snapshot was started.")
	descSnapDuration = desc("snapshot_last_duration_seconds", "Time the newest snapshot taken since start took.")
	descSnapshots    = desc("snapshots_total", "Snapshots taken since start.")
	descSnapFailures = desc("snapshot_failures_total", "Snapshots that failed since start.")
	descRestores     = desc("snapshot_restores_total", "Snapshots installed from the leader since start.")
	descInodes       = desc("namespace_inodes", "Inodes in the namespace.")
	descMounts       = desc("namespace_mounts", "UFS mounts in the mount table.")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
}

// roles are the values of the role label.
var roles = []string{"leader", "follower", "candidate", "shutdown"}

// journalCollector reads the journal's figures when scraped.
type journalCollector struct{ node *raftjournal.Node }

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRole, descServing, descTerm, descLastIndex, descCommitIndex, descAppliedIndex,
		descMembers, descEntries, descSplits, descSnapIndex, descSnapSize, descSnapAge, descSnapDuration, descSnapshots,
		descSnapFailures, descRestores, descInodes, descMounts} {
		ch <- d
	}
}

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	st := c.node.Status()
	for _, r := range roles {
		gauge(descRole, b2f(st.Role == r), r)
	}
	gauge(descServing, b2f(st.Serving))
	gauge(descTerm, float64(st.Term))
	gauge(descLastIndex, float64(st.LastLogIndex))
	gauge(descCommitIndex, float64(st.CommitIndex))
	gauge(descAppliedIndex, float64(st.AppliedIndex))
	gauge(descMembers, float64(len(st.Members)))

	js := c.node.Stats()
	counter(descEntries, js.EntriesApplied)
	counter(descSplits, js.Splits)
	counter(descSnapshots, js.Snapshots)
	counter(descSnapFailures, js.SnapshotFailures)
	counter(descRestores, js.Restores)
	gauge(descSnapIndex, float64(js.SnapshotIndex))
	gauge(descSnapSize, float64(js.SnapshotSize))
	if !js.SnapshotTime.IsZero() {
		gauge(descSnapAge, time.Since(js.SnapshotTime).Seconds())
	}
	gauge(descSnapDuration, js.LastSnapshotDuration.Seconds())

	ns, err := readNamespace(c.node)
	if err == nil {
		gauge(descInodes, float64(ns.inodes))
		gauge(descMounts, float64(len(ns.mounts)))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// namespaceView is what the admin port shows of the namespace.
type namespaceView struct {
	inodes uint64
	mounts []*meta.Mount
}

// readNamespace reads the inode count and the mount table from this
// master's store (possibly slightly behind the leader's).
func readNamespace(node *raftjournal.Node) (namespaceView, error) {
	var v namespaceView
	err := node.View(func(tx meta.Txn) error {
		var err error
		if v.inodes, err = meta.InodeCount(tx); err != nil {
			return err
		}
		v.mounts, err = meta.ListMounts(tx)
		return err
	})
	return v, err
}

// displayURI shows a UFS URI without user information or query (where a
// credential could hide): the query is replaced by ufs.Redacted.
func displayURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	q := u.RawQuery != "" || u.ForceQuery
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	s := u.String()
	if q {
		s += "?" + ufs.Redacted
	}
	return s
}

// displayOptions shows mount options with secrets redacted: the values of
// secret keys (ufs.IsSecret) and any sealed value.
func displayOptions(options map[string]string) string {
	o := make(ufs.Options, len(options))
	for k, v := range options {
		if secrets.IsSealed(v) {
			v = ufs.Redacted
		}
		o[k] = v
	}
	return o.String() // redacts the secret keys' values
}

//go:embed status.html
var statusFS embed.FS

var statusTmpl = template.Must(template.ParseFS(statusFS, "status.html"))

// statusPage is the HTML status page of the admin port.
type statusPage struct {
	node  *raftjournal.Node
	start time.Time
}

// statusData is what status.html renders.
type statusData struct {
	Now, Started    string
	Uptime          string
	Node            raftjournal.Status
	Members         []memberRow
	Inodes          uint64
	NamespaceErr    string
	Mounts          []mountRow
	Journal         raftjournal.Stats
	SnapshotTime    string
	SnapshotAge     string
	SnapshotLastDur string
}

type memberRow struct {
	raftjournal.Member
	Role string
	Self bool
}

type mountRow struct {
	ID           uint64
	Path, URI    string
	Options      string
	ReadOnly     bool
	SyncInterval string
	Created      string
}

func (p *statusPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	st := p.node.Status()
	js := p.node.Stats()
	d := statusData{
		Now:     now.UTC().Format(time.RFC3339),
		Started: p.start.UTC().Format(time.RFC3339),
		Uptime:  now.Sub(p.start).Round(time.Second).String(),
		Node:    st,
		Journal: js,
	}
	for _, m := range st.Members {
		row := memberRow{Member: m, Self: m.ID == st.ID, Role: m.Suffrage}
		switch {
		case m.ID == st.LeaderID:
			row.Role = "leader"
		case m.ID == st.ID:
			row.Role = st.Role
		case m.Suffrage == "voter":
			row.Role = "follower"
		}
		d.Members = append(d.Members, row)
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].ID < d.Members[j].ID })
	if ns, err := readNamespace(p.node); err != nil {
		d.NamespaceErr = err.Error()
	} else {
		d.Inodes = ns.inodes
		for _, m := range ns.mounts {
			row := mountRow{
				ID: m.ID, Path: m.Path, URI: displayURI(m.URI),
				Options:  displayOptions(m.Options),
				ReadOnly: m.ReadOnly, SyncInterval: "never",
			}
			if m.SyncIntervalNs > 0 {
				row.SyncInterval = time.Duration(m.SyncIntervalNs).String()
			}
			if m.CreatedNs > 0 {
				row.Created = time.Unix(0, m.CreatedNs).UTC().Format(time.RFC3339)
			}
			d.Mounts = append(d.Mounts, row)
		}
	}
	if !js.SnapshotTime.IsZero() {
		d.SnapshotTime = js.SnapshotTime.UTC().Format(time.RFC3339)
		d.SnapshotAge = now.Sub(js.SnapshotTime).Round(time.Second).String()
	}
	if js.LastSnapshotDuration > 0 {
		d.SnapshotLastDur = js.LastSnapshotDuration.Round(time.Millisecond).String()
	}
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, d); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}
