package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bin holds the binaries TestMain built.
var bin struct {
	masterd, skyfs string
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "skyfs-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for name, dst := range map[string]*string{"masterd": &bin.masterd, "skyfs": &bin.skyfs} {
		*dst = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", *dst, "github.com/skyfs/skyfs/cmd/"+name)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: build %s: %v\n", name, err)
			return 1
		}
	}
	return m.Run()
}
