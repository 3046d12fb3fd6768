// Package core is the domain of rops: group records, the Node, Store and
// Journal interfaces, the error classes, and the coordinator that creates and
// deletes a record on every node as one all-or-nothing operation.
//
// core imports only the standard library. It reaches the world through the
// interfaces it declares (Node, Journal, Locker, Clock, Backoff and an RNG), so the
// same algorithm runs against embedded nodes, nodes over HTTP, or a caller's
// own implementation.
package core
