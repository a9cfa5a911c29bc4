package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The binaries the Dockerfile's build stage makes, once per test binary:
// its go build commands are run with /out replaced by a temporary
// directory, without the flags that only change how the code is compiled
// (-trimpath, -ldflags, cgo off): with those, the whole module and its
// dependencies would be compiled again, apart from the build cache every
// other build shares. That cgo can be off is checked by staticBuildable.
var built struct {
	once sync.Once
	dir  string
	err  error
	// flags are the flag names each binary's --help lists, by file name.
	flags map[string]map[string]bool
}

// TestMain removes the binaries after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// repoRoot is the module root, where the Dockerfile's build runs.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above deploy/: %v", err)
	}
	return root
}

// compileOnlyFlags are go build flags with a value that change how the
// code is compiled, not what is built.
var compileOnlyFlags = map[string]bool{"-ldflags": true, "-gcflags": true}

// buildImageBinaries runs the build stage's go build commands and returns
// the directory standing for /out.
func buildImageBinaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		df := parseDockerfile(t, filepath.Join(repoRoot(t), "deploy", "docker", "Dockerfile"))
		st := df.stage("build")
		if st == nil {
			built.err = errors.New("the Dockerfile has no build stage")
			return
		}
		cmds := st.goBuilds()
		if len(cmds) == 0 {
			built.err = errors.New("the build stage runs no go build")
			return
		}
		built.dir, built.err = os.MkdirTemp("", "skyfs-deploy-bin-")
		if built.err != nil {
			return
		}
		for _, args := range cmds {
			var run []string
			for i := 1; i < len(args); i++ {
				a := strings.ReplaceAll(args[i], "/out", built.dir)
				switch {
				case a == "-trimpath":
				case compileOnlyFlags[a]:
					i++
				default:
					run = append(run, a)
				}
			}
			cmd := exec.Command("go", run...)
			cmd.Dir = repoRoot(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = &buildError{args: args, out: string(out), err: err}
				return
			}
		}
		built.flags = map[string]map[string]bool{}
		ents, _ := os.ReadDir(built.dir)
		for _, e := range ents {
			out, _ := exec.Command(filepath.Join(built.dir, e.Name()), "--help").CombinedOutput()
			built.flags[e.Name()] = helpFlags(string(out))
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

type buildError struct {
	args []string
	out  string
	err  error
}

func (e *buildError) Error() string {
	return "the Dockerfile's " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.out
}

// helpFlagRE finds a flag at the start of a help line: "  -name ..." or
// "  --name ...".
var helpFlagRE = regexp.MustCompile(`(?m)^\s+--?([a-z][a-z0-9-]*)\b`)

func helpFlags(help string) map[string]bool {
	out := map[string]bool{}
	for _, m := range helpFlagRE.FindAllStringSubmatch(help, -1) {
		out[m[1]] = true
	}
	return out
}

// checkFlags fails for each "-name" or "--name[=v]" in args that binary
// does not list in its --help.
func checkFlags(t *testing.T, where, binary string, args []string) {
	t.Helper()
	flags, ok := built.flags[binary]
	if !ok {
		t.Errorf("%s: runs %s, which the Dockerfile does not build", where, binary)
		return
	}
	if len(flags) == 0 {
		t.Errorf("%s: %s --help lists no flags", where, binary)
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: %s has no flag %q", where, binary, name)
		}
	}
}

func TestHelpFlags(t *testing.T) {
	got := helpFlags("usage: x\n  -o OPTIONS   opts\n  --cache-dir DIR  dir\n  -admin-addr string\n\tnot -a flag\n")
	for _, want := range []string{"o", "cache-dir", "admin-addr"} {
		if !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %v", got)
	}
}
