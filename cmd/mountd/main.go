// Command mountd mounts skyfs on a local directory and serves it; installed
// as mount.skyfs it is the mount(8) helper. See package cmd/mountd/mountd.
package main

import (
	"os"

	"github.com/skyfs/skyfs/cmd/mountd/mountd"
)

func main() { os.Exit(mountd.Main(os.Args)) }
