package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skyfs/skyfs/internal/mountctl"
)

// bin holds the binaries TestMain built.
var bin struct {
	masterd, skyfs string
}

func TestMain(m *testing.M) {
	if os.Getenv(echoEnv) != "" {
		os.Exit(serveEcho())
	}
	if os.Getenv(grpcEchoEnv) != "" {
		os.Exit(serveGRPCEcho())
	}
	if os.Getenv(probeEnv) != "" {
		os.Exit(probeMountAccess())
	}
	os.Exit(run(m))
}

// echoEnv makes the test binary a TCP echo server (echoPeer).
const echoEnv = "SKYFS_INTEGRATION_ECHO"

// serveEcho listens on loopback, prints its address, and echoes what the
// first connection sends until it closes.
func serveEcho() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(l.Addr())
	c, err := l.Accept()
	if err != nil {
		return 1
	}
	io.Copy(c, c)
	return 0
}

// echoPeer starts the test binary again as an echo server in its own
// process and returns a connection to it.
func echoPeer(tb testing.TB) net.Conn {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), echoEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimSpace(addr))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "skyfs-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The mount daemons of these tests put their control sockets here, and
	// the skyfs commands look for them here, apart from any other daemons
	// on the machine.
	runDir, err := os.MkdirTemp("", "skyfs-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(runDir)
	os.Setenv(mountctl.EnvRunDir, runDir)
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
