package fusefs

// MountStats are figures of a mount being served, for monitoring.
type MountStats struct {
	// OpenHandles is the number of file handles open.
	OpenHandles int64
	// Releasing is the number of releases in progress: the last close of a
	// file written on this host, which may still be uploading.
	Releasing int64
	// Reads counts the FUSE read requests served; PassthroughOpens the
	// opens answered with FUSE passthrough (their reads bypass the daemon).
	Reads, PassthroughOpens int64
}

// Stats returns the mount's figures.
func (s *Mounted) Stats() MountStats {
	return MountStats{
		OpenHandles:      s.m.handles.Load(),
		Releasing:        s.m.releasing.Load(),
		Reads:            s.m.reads.Load(),
		PassthroughOpens: s.m.passthroughs.Load(),
	}
}
