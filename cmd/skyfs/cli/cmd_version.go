package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version. Release builds set it with
// -ldflags "-X github.com/skyfs/skyfs/cmd/skyfs/cli.Version=v1.2.3"; when it
// is empty the module version recorded by the Go toolchain is shown.
var Version string

// versionJSON is the output of skyfs version.
type versionJSON struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Revision  string `json:"vcs_revision,omitempty"`
	Time      string `json:"vcs_time,omitempty"`
	Modified  bool   `json:"vcs_modified,omitempty"`
}

// buildVersion describes the running binary.
func buildVersion() versionJSON {
	v := versionJSON{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

var versionCmd = &command{
	name:    "version",
	summary: "print the version, Go version and source revision of this binary",
	local:   true,
	run: func(_ context.Context, r *runner, args []string) error {
		if len(args) != 0 {
			return usagef("version: unexpected argument %q", args[0])
		}
		v := buildVersion()
		if r.o.output == "json" {
			return r.printJSON(v)
		}
		fmt.Fprintf(r.env.Stdout, "skyfs %s\n", v.Version)
		fmt.Fprintf(r.env.Stdout, "go:       %s %s\n", v.GoVersion, v.Platform)
		rev, t := v.Revision, v.Time
		if rev == "" {
			rev = "unknown"
		}
		if v.Modified {
			rev += " (modified)"
		}
		if t == "" {
			t = "unknown"
		}
		fmt.Fprintf(r.env.Stdout, "revision: %s\n", rev)
		fmt.Fprintf(r.env.Stdout, "time:     %s\n", t)
		return nil
	},
}
