package cli

// The drivers rops ships. Each registers its schemes with plugins when
// imported, so this is the one place that decides which kinds of node and
// journal the command line opens. A program that embeds rops imports only
// those it wants, and links nothing of the others (badger, the etcd
// client).
import (
	_ "github.com/reliable-ops/rops/nodes/badger"  // badger://
	_ "github.com/reliable-ops/rops/nodes/etcd"    // etcd:// journals
	_ "github.com/reliable-ops/rops/nodes/httpapi" // http://, https://
	_ "github.com/reliable-ops/rops/nodes/memory"  // memory://
)
