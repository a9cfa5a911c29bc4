package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dockerfile is a parsed Dockerfile: its instructions by stage.
type dockerfile struct {
	args   map[string]string // global ARGs with defaults
	stages []*stage
}

type stage struct {
	name, from string
	instrs     []instr
}

type instr struct {
	op, rest string
}

// parseDockerfile reads instructions, joining continued lines and
// dropping comments.
func parseDockerfile(t *testing.T, p string) *dockerfile {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{args: map[string]string{}}
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		op, rest, _ := strings.Cut(line, " ")
		op = strings.ToUpper(op)
		rest = strings.TrimSpace(rest)
		switch {
		case op == "FROM":
			f := strings.Fields(rest)
			st := &stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && op == "ARG":
			k, v, _ := strings.Cut(rest, "=")
			df.args[k] = v
		case len(df.stages) == 0:
			t.Errorf("%s: %s before the first FROM", p, op)
		default:
			st := df.stages[len(df.stages)-1]
			st.instrs = append(st.instrs, instr{op, rest})
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return df
}

func (df *dockerfile) stage(name string) *stage {
	for _, st := range df.stages {
		if st.name == name {
			return st
		}
	}
	return nil
}

// envList is the stage's ENV settings as KEY=VALUE.
func (st *stage) envList() []string {
	var out []string
	for _, in := range st.instrs {
		if in.op == "ENV" {
			out = append(out, in.rest)
		}
	}
	return out
}

// goBuilds returns the argument lists of the go build commands the stage
// runs.
func (st *stage) goBuilds() [][]string {
	var out [][]string
	for _, in := range st.instrs {
		if in.op != "RUN" {
			continue
		}
		for cmd := range strings.SplitSeq(in.rest, "&&") {
			args := shellWords(strings.TrimSpace(cmd))
			if len(args) > 1 && args[0] == "go" && args[1] == "build" {
				out = append(out, args)
			}
		}
	}
	return out
}

// shellWords splits a simple command line: words, double-quoted strings.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	in, quoted := false, false
	for _, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
			in = true
		case (c == ' ' || c == '\t') && !quoted:
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(c)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

// copies returns the COPY --from=build sources of a stage and its
// destination directory.
func (st *stage) copies(t *testing.T) (srcs []string, dst string) {
	for _, in := range st.instrs {
		if in.op != "COPY" || !strings.HasPrefix(in.rest, "--from=build ") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(in.rest, "--from=build "))
		if len(f) < 2 {
			t.Errorf("stage %s: COPY %q", st.name, in.rest)
			continue
		}
		srcs = append(srcs, f[:len(f)-1]...)
		dst = f[len(f)-1]
	}
	return srcs, dst
}

// entrypoint returns the exec-form ENTRYPOINT of a stage.
func (st *stage) entrypoint(t *testing.T) []string {
	for _, in := range st.instrs {
		if in.op == "ENTRYPOINT" {
			var ep []string
			if err := json.Unmarshal([]byte(in.rest), &ep); err != nil {
				t.Errorf("stage %s: ENTRYPOINT is not in exec form: %v", st.name, err)
			}
			return ep
		}
	}
	return nil
}

func (st *stage) user() string {
	u := ""
	for _, in := range st.instrs {
		if in.op == "USER" {
			u = in.rest
		}
	}
	return u
}

// imageTargets are the Dockerfile's final stages, the images the manifests
// may name as skyfs/<target>.
var imageTargets = []string{"masterd", "csi"}

// TestDockerfile checks deploy/docker/Dockerfile without a container
// engine: its build commands build (they are run, with /out in a temporary
// directory and cgo off as the file sets), each image copies binaries the
// build makes and starts one of them with flags it has, and the master
// image runs as a non-root user.
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	df := parseDockerfile(t, filepath.Join(root, "deploy", "docker", "Dockerfile"))
	binDir := buildImageBinaries(t)
	build := df.stage("build")
	if build == nil || !slices.Contains(build.envList(), "CGO_ENABLED=0") {
		t.Error("the build stage does not turn cgo off: the binaries would not be static")
	}
	staticBuildable(t, build)
	for _, in := range build.instrs {
		if in.op == "COPY" {
			for _, src := range strings.Fields(in.rest)[:len(strings.Fields(in.rest))-1] {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("build stage copies %s: %v", src, err)
				}
			}
		}
	}
	for _, name := range imageTargets {
		st := df.stage(name)
		if st == nil {
			t.Errorf("no stage %s", name)
			continue
		}
		srcs, dst := st.copies(t)
		if len(srcs) == 0 {
			t.Errorf("stage %s copies no binary", name)
		}
		var have []string
		for _, s := range srcs {
			if !strings.HasPrefix(s, "/out/") {
				t.Errorf("stage %s copies %s, not a build output", name, s)
				continue
			}
			if _, err := os.Stat(filepath.Join(binDir, strings.TrimPrefix(s, "/out/"))); err != nil {
				t.Errorf("stage %s copies %s, which the build does not make", name, s)
			}
			have = append(have, path.Join(dst, path.Base(s)))
		}
		ep := st.entrypoint(t)
		if len(ep) == 0 {
			t.Errorf("stage %s has no ENTRYPOINT", name)
			continue
		}
		if !slices.Contains(have, ep[0]) {
			t.Errorf("stage %s starts %s, which it does not copy (%v)", name, ep[0], have)
		}
		checkFlags(t, "image "+name, path.Base(ep[0]), ep[1:])
	}
	if st := df.stage("masterd"); st != nil {
		if u := st.user(); u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
			t.Errorf("the masterd image runs as %q, want a non-root user", u)
		}
	}
	if st := df.stage("csi"); st != nil {
		srcs, _ := st.copies(t)
		if !slices.Contains(srcs, "/out/mountd") {
			t.Error("the csi image has no mountd, which the node plugin starts")
		}
	}
}

func TestShellWords(t *testing.T) {
	got := shellWords(`go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/x ./cmd/csi`)
	want := []string{"go", "build", "-ldflags", "-s -w -X main.version=${VERSION}", "-o", "/out/x", "./cmd/csi"}
	if !slices.Equal(got, want) {
		t.Errorf("%q", got)
	}
}

// staticBuildable checks that the packages the build stage builds, and all
// they import, build with cgo off: go list reports a package that needs
// cgo as an error then.
func staticBuildable(t *testing.T, build *stage) {
	t.Helper()
	var pkgs []string
	for _, args := range build.goBuilds() {
		for _, a := range args {
			if strings.HasPrefix(a, "./") {
				pkgs = append(pkgs, a)
			}
		}
	}
	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-f", `{{with .Error}}{{$.ImportPath}}: {{.}}{{"\n"}}{{end}}`}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("with cgo off, go list %v: %v\n%s", pkgs, err, out)
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(repoRoot(t), p, "main.go")); err != nil {
			t.Errorf("the build stage builds %s, which has no main.go", p)
		}
	}
}
