// Command masterd runs one skyfs master: a Raft member of the journal and,
// while it leads, the gRPC service of the namespace. See package
// cmd/masterd/masterd for flags and behaviour.
package main

import (
	"os"

	"github.com/skyfs/skyfs/cmd/masterd/masterd"
)

func main() { os.Exit(masterd.Main(os.Args[1:])) }
