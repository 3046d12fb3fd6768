package cli

// The drivers and decorators rops ships. Each registers its schemes, or
// the spec settings it reads, with plugins when imported, so this is the one
// place that decides which kinds of node and journal the command line opens
// and what settings its local nodes take. A program that embeds rops
// imports only those it wants, and links nothing of the others (badger,
// the etcd client).
import (
	_ "github.com/reliable-ops/rops/nodes/badger"  // badger://
	_ "github.com/reliable-ops/rops/nodes/etcd"    // etcd:// journals
	_ "github.com/reliable-ops/rops/nodes/faults"  // error_rate=, latency=, seed=, ... of local nodes
	_ "github.com/reliable-ops/rops/nodes/httpapi" // http://, https://
	_ "github.com/reliable-ops/rops/nodes/memory"  // memory://
)
