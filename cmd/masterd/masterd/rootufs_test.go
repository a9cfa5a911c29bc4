package masterd

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRootUFSConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(path, []byte(`{"root_ufs": "file:///srv/a", "root_ufs_options": {"a": "1", "b": "2"}, "root_ufs_sync_interval": "1m"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		uri      string
		opts     map[string]string
		interval time.Duration
	}{
		{"flags only", []string{"--root-ufs", "s3://b/p", "--root-ufs-option", "k=v=w", "--root-ufs-option", "x="}, "s3://b/p", map[string]string{"k": "v=w", "x": ""}, 0},
		{"file only", []string{"--config", path}, "file:///srv/a", map[string]string{"a": "1", "b": "2"}, time.Minute},
		{"flags over file", []string{"--config", path, "--root-ufs-option", "b=3", "--root-ufs-option", "c=4", "--root-ufs-sync-interval", "5s"},
			"file:///srv/a", map[string]string{"a": "1", "b": "3", "c": "4"}, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseArgs(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RootUFS != tc.uri || !maps.Equal(cfg.RootUFSOptions, tc.opts) || time.Duration(cfg.RootUFSSyncInterval) != tc.interval {
				t.Errorf("got %q %v %v", cfg.RootUFS, cfg.RootUFSOptions, time.Duration(cfg.RootUFSSyncInterval))
			}
		})
	}
	if _, err := parseArgs([]string{"--root-ufs-option", "novalue"}); err == nil {
		t.Errorf("an option without = was accepted")
	}
}
