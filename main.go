// Command rops creates and deletes group records on every node of an
// unreliable cluster as one all-or-nothing operation. See README.md.
package main

import (
	"os"

	"github.com/reliable-ops/rops/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
