package master

import (
	"maps"
	"syscall"

	"github.com/skyfs/skyfs/internal/secrets"
	"github.com/skyfs/skyfs/meta"
	"github.com/skyfs/skyfs/ufs"
)

// sealOptions returns a copy of options whose secret values (ufs.IsSecret)
// are sealed under the cluster key, bound to their option key; without a
// sealer it returns options as they are.
func sealOptions(sl *secrets.Sealer, options map[string]string) map[string]string {
	if sl == nil || len(options) == 0 {
		return options
	}
	out := make(map[string]string, len(options))
	for k, v := range options {
		if ufs.IsSecret(k) && v != "" && !secrets.IsSealed(v) {
			v = sl.Seal(v, k)
		}
		out[k] = v
	}
	return out
}

// checkNotSealed refuses options from a caller that look sealed: sealed
// values are made by the master only.
func checkNotSealed(options map[string]string) error {
	for k, v := range options {
		if secrets.IsSealed(v) {
			return fail(syscall.EINVAL, "option %s: a value may not start with %q", k, secrets.SealedPrefix)
		}
	}
	return nil
}

// openMount returns a copy of m whose sealed options are opened: for
// MountAccess and for opening the UFS, never for anything that is stored or
// printed.
func openMount(sl *secrets.Sealer, m *meta.Mount) (*meta.Mount, error) {
	sealed := false
	for _, v := range m.Options {
		sealed = sealed || secrets.IsSealed(v)
	}
	if !sealed {
		return m, nil
	}
	if sl == nil {
		return nil, fail(syscall.EACCES, "mount %d: its credentials are sealed and this master has no cluster key (--cluster-key-file)", m.ID)
	}
	c := *m
	c.Options = maps.Clone(m.Options)
	for k, v := range c.Options {
		if !secrets.IsSealed(v) {
			continue
		}
		pt, err := sl.Open(v, k)
		if err != nil {
			return nil, fail(syscall.EACCES, "mount %d: option %s: %v", m.ID, k, err)
		}
		c.Options[k] = pt
	}
	return &c, nil
}
