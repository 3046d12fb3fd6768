package cli

// The drivers and decorators rops ships. Each registers its schemes, or
// the spec settings it reads, with plugins when imported, so this is the one
// place that decides which kinds of node and journal the command line opens
// and what settings its local nodes take. A program that embeds rops
// imports only those it wants, and links nothing of the others (badger,
// the etcd client).
import (
	_ "github.com/reliable-ops/rops/decorators/faults" // error_rate=, latency=, seed=, ... of local nodes
	_ "github.com/reliable-ops/rops/drivers/badger"    // badger://
	_ "github.com/reliable-ops/rops/drivers/httpapi"   // http://, https://
	_ "github.com/reliable-ops/rops/drivers/memory"    // memory://
	_ "github.com/reliable-ops/rops/journals/etcd"     // etcd:// journals
)
