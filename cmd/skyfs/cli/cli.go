// Package cli is the skyfs command: namespace commands (ls, stat, mkdir, rm,
// mv), the UFS mount table and metadata sync (mount, unmount, mounts, sync)
// and administration (status, cluster status|add|remove|transfer-leader,
// journal checkpoint) against a group of masters. It only parses arguments,
// calls package client and prints; Main can be called in-process by tests.
// A command group (cluster, journal, cache) alone or with --help lists its
// subcommands.
//
// Host commands talk to this host's mounts and mount daemons, not to the
// masters. They find the daemons through their control sockets (package
// mountctl; $SKYFS_RUN_DIR, default /run/skyfs), and take a PATH either as
// a local path inside a skyfs mount or, when nothing by that name exists
// here, as a namespace path that one of the mounts serves (host.go):
//
//	skyfs load PATH... [--recursive] [--threads N]
//	    reads files through a skyfs mount so that its mountd caches their
//	    blocks, and returns once the daemon has stored them; progress on
//	    stderr, a summary on stdout; a file that cannot be read is reported
//	    and the load goes on (exit code 1 at the end). A directory PATH
//	    without --recursive is a usage error.
//	skyfs cache stats [PATH | --admin-addr HOST:PORT]
//	    a mountd's block cache figures, from its control socket, or from
//	    its admin port's /metrics.
//	skyfs cache drop [PATH...] [--to SIZE]
//	    empties the block cache of every mountd of this host, or drops the
//	    files at or under PATH, or shrinks a cache to SIZE.
//	skyfs status
//	    the masters (roles, leader, lag), the namespace and its mounts, and
//	    this host's mount daemons with their cache use.
//	skyfs bench DIR [--size 1G] [--files 1000] [--threads N] [--json]
//	    runs package fsbench in DIR and prints its table; its --help says
//	    what the cold read measures.
//	skyfs completion bash|zsh
//	    a shell completion script, made from the command table.
//	skyfs version
//	    the version (Version, set at link time, or the module's), Go version
//	    and VCS revision and time of the binary.
//
// The masters come from --masters host:port,... or the SKYFS_MASTERS
// environment variable. Every command takes --help. A failure prints one
// readable line on stderr and exits non-zero: 1 when an operation failed, 2
// for a usage error. Tabular output is also available as JSON with --output
// json.
//
// Credentials: --token-file (or $SKYFS_TOKEN_FILE) names a root-only file
// with the admin or mount token; --tls-ca-file, --tls-cert-file and
// --tls-key-file (or $SKYFS_TLS_CA_FILE, ...) turn on mutual TLS. skyfs
// init --dir DIR [--tls --hosts h1,h2] writes a new cluster's tokens,
// cluster key, CA and certificates, and talks to no master. mount
// --option-file reads UFS options (credentials) from a root-only file.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/status"

	"github.com/skyfs/skyfs/client"
)

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// EnvMasters is the environment variable that lists the masters.
const EnvMasters = "SKYFS_MASTERS"

// Main runs the skyfs command with args (without the program name) and
// returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return Run(ctx, args, Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}

// Env is the outside world of one run.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// usageError is a bad command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments
	summary string
	// help, if set, follows the summary in --help.
	help string
	// flags declares the command's own flags.
	flags func(fs *flag.FlagSet, o *opts)
	run   func(ctx context.Context, r *runner, args []string) error
	// local commands talk to no master (skyfs init).
	local bool
}

// opts are the flags of every command, and the commands' own.
type opts struct {
	masters string
	output  string
	timeout time.Duration
	sec     securityOpts // security.go
	init    initOpts     // cmd_init.go
	load    loadOpts     // cmd_load.go
	bench   benchOpts    // cmd_bench.go
	admin   string       // cache stats --admin-addr
	dropTo  string       // cache drop --to

	long, parents, recursive, force, noReplace, exchange bool
	mode                                                 uint

	options      map[string]string // mount --option
	readOnly     bool
	syncInterval time.Duration
}

// runner is the state of one run.
type runner struct {
	env Env
	o   opts
	c   *client.Client
}

func commands() []*command {
	return []*command{
		lsCmd, statCmd, mkdirCmd, rmCmd, mvCmd,
		mountCmd, unmountCmd, mountsCmd, syncCmd,
		statusCmd, clusterStatusCmd, clusterAddCmd, clusterRemoveCmd, clusterTransferCmd, journalCheckpointCmd,
		loadCmd, cacheStatsCmd, cacheDropCmd, benchCmd,
		initCmd, versionCmd, completionCmd,
	}
}

// commonFlags declares the flags every command takes, with o's values as
// defaults (so that flags given before the command carry over).
func commonFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.masters, "masters", o.masters, "masters as `host:port,...` (default $"+EnvMasters+")")
	fs.StringVar(&o.output, "output", o.output, "output format: text or json")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long")
	securityFlags(fs, o)
}

// Run runs one command line.
func Run(ctx context.Context, args []string, env Env) int {
	err := dispatch(ctx, args, env)
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "skyfs: %s\n", oneLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitError
}

func dispatch(ctx context.Context, args []string, env Env) error {
	o := opts{output: "text", timeout: 30 * time.Second}
	global := flag.NewFlagSet("skyfs", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	commonFlags(global, &o)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Stdout)
			return err
		}
		return usagef("%v", err)
	}
	rest := global.Args()
	if len(rest) == 0 {
		printUsage(env.Stderr)
		return usagef("no command given")
	}
	if rest[0] == "help" {
		if len(rest) == 1 {
			printUsage(env.Stdout)
			return nil
		}
		rest = append(rest[1:], "--help")
	}
	cmd, n := findCommand(rest)
	if cmd == nil && isGroup(rest[0]) {
		g := rest[0]
		switch {
		case len(rest) == 1:
			printGroupUsage(env.Stderr, g)
			return usagef("%s: want a subcommand (see skyfs %s --help)", g, g)
		case isHelpArg(rest[1]):
			printGroupUsage(env.Stdout, g)
			return flag.ErrHelp
		}
	}
	if cmd == nil {
		see := "skyfs --help"
		if n == 2 {
			see = "skyfs " + rest[0] + " --help"
		}
		return usagef("unknown command %q (see %s)", strings.Join(rest[:min(n, len(rest))], " "), see)
	}
	fs := flag.NewFlagSet("skyfs "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	commonFlags(fs, &o)
	if cmd.flags != nil {
		cmd.flags(fs, &o)
	}
	cmdArgs, err := parseInterspersed(fs, rest[n:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(env.Stdout, "Usage: skyfs %s [flags] %s\n\n%s\n\n", cmd.name, cmd.args, cmd.summary)
			if cmd.help != "" {
				fmt.Fprintf(env.Stdout, "%s\n\n", cmd.help)
			}
			fmt.Fprintf(env.Stdout, "Flags:\n")
			fs.SetOutput(env.Stdout)
			fs.PrintDefaults()
			return err
		}
		return usagef("%s: %v", cmd.name, err)
	}
	if o.output != "text" && o.output != "json" {
		return usagef("--output %q: want text or json", o.output)
	}
	r := &runner{env: env, o: o}
	if cmd.local {
		return cmd.run(ctx, r, cmdArgs)
	}
	if err := r.connect(r.mastersList()); err != nil {
		return err
	}
	defer r.c.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return cmd.run(ctx, r, cmdArgs)
}

// connect makes r's client of the masters in list.
func (r *runner) connect(list []string) error {
	if len(list) == 0 {
		return usagef("no masters: give --masters host:port,... or set %s", EnvMasters)
	}
	ccfg := client.Config{Masters: list}
	if err := r.o.sec.apply(&ccfg, r.env); err != nil {
		return err
	}
	c, err := client.New(ccfg)
	if err != nil {
		return usagef("%v", err)
	}
	r.c = c
	return nil
}

// findCommand matches the longest command name ("cluster status") at the
// start of args and returns it and how many words it took.
func findCommand(args []string) (*command, int) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, len(words)
		}
	}
	if len(args) > 1 && isGroup(args[0]) {
		return nil, 2
	}
	return nil, 1
}

// isGroup reports whether word is the first of the two-word commands
// (cluster, journal, cache).
func isGroup(word string) bool {
	return slices.ContainsFunc(commands(), func(c *command) bool { return strings.HasPrefix(c.name, word+" ") })
}

// isHelpArg reports whether a word asks for help.
func isHelpArg(s string) bool {
	return s == "-h" || s == "-help" || s == "--help" || s == "help"
}

// printGroupUsage lists the subcommands of group.
func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: skyfs %s SUBCOMMAND [flags] [args]\n\nSubcommands:\n", group)
	for _, c := range commands() {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			fmt.Fprintf(w, "  %-18s %s\n", sub, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun skyfs %s SUBCOMMAND --help for a subcommand's flags.\n", group)
}

// parseInterspersed parses flags placed before, between or after the
// positional arguments; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: skyfs [--masters host:port,...] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-24s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nThe masters may also come from $%s. Run skyfs COMMAND --help for a command's flags.\n", EnvMasters)
}

// oneLine renders an error on one line, with a gRPC status shown by its
// message only (without "rpc error: code = ... desc =").
func oneLine(err error) string {
	msg := err.Error()
	var gs interface {
		error
		GRPCStatus() *status.Status
	}
	if errors.As(err, &gs) {
		msg = strings.Replace(msg, gs.Error(), gs.GRPCStatus().Message(), 1)
	}
	return strings.Join(strings.Fields(msg), " ")
}

// printJSON writes v as indented JSON.
func (r *runner) printJSON(v any) error {
	enc := json.NewEncoder(r.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
