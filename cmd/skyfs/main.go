// Command skyfs is the skyfs admin and user CLI. See package cmd/skyfs/cli.
package main

import (
	"os"

	"github.com/skyfs/skyfs/cmd/skyfs/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
