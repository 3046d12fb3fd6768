// Package httpapi is the HTTP API of rops' nodes, wire-compatible with the
// original Flask app: a Server, an http.Handler that serves a set of
// core.Nodes, and a Client, a core.Node that talks to such a server (or to
// the original one) over HTTP.
//
// Every route is served under /v1/ and at the root. The node is chosen by the
// "node" header; a server of one node defaults to it. Errors are JSON
// {"message": "...", "status": N}.
//
//	GET    /ping, /ping/            200 PONG
//	GET    /stats                   200 [true, {"node01": 0, "node02": 0}]
//	GET    /group/<id>              200 {"groupId": "<id>", "timestamp": "<token>"}; 404; 409 stale
//	POST   /group {"groupId": ...}  201 CREATED; 400 Perhaps the object exists.; 409 fenced or stale
//	DELETE /group {"groupId": ...}  200 OK; 404; 409 stale
//	GET    /groups?after=&limit=    200 {"groups": [...], "next": "<id>" or null}
//	GET    /groups?after=&stream=1  200 the same, every record after, written as read (stream.go)
//	GET    /admin/faults            200 {"node01": {"error_rate": 0.2, ...}} (ServerOptions.Admin)
//	PUT    /admin/faults            200 the new faults of every node
//	GET    /healthz                 200 ok (the process serves)
//	GET    /readyz                  200 ready; 503 a line per node whose one-record List failed
//	GET    /metrics                 200 Prometheus text (ServerOptions.Metrics, metrics.go)
//
// The last three are rops' own, served under ServerOptions.Original too
// (the original had none; its clients never ask for them), and are not
// routes of a node: they take no node header.
//
// The optional "timestamp" header carries the operation's token: the token a
// POST stores (the server makes one if it is absent) and the token a DELETE
// is conditional on; it must be a non-negative decimal number such as
// 1633786070.879454. Bad requests get 406 as in the original (missing,
// repeated or unknown node, a timestamp that is repeated or not such a
// number, missing body or groupId, invalid id, an id escaping a lone UTF-16
// surrogate), undecodable JSON 400, bodies over ServerOptions.MaxBody 413,
// a body that does not arrive within ServerOptions.BodyTimeout 408 (and the
// connection is closed). Beyond ServerOptions.MaxStats GET /stats or
// MaxLists GET /groups at once, a request answers 503 with Retry-After: 1.
// What net/http refuses before any handler runs (no Host, a bad escape in
// the path, conflicting Content-Lengths) gets its text "400 Bad Request". A node's injected faults answer as
// the original's did: 500 or 408 with its messages; a node that is down
// answers 503 with "Rops-Applied: false", the only 503 the Client takes as
// certainly not applied. A create whose token a tombstone holds answers 409
// (core.ErrFenced), and every answer for a node that keeps tombstones
// carries "Rops-Tombstones: <ttl>", which makes the Client a core.Fencer. A
// reset fault (faults.ErrReset) resets the TCP connection with
// no answer, and a gateway fault (faults.ErrGateway) answers 502, 503 or 504
// with nginx's HTML page and no rops header, as a proxy in front would.
//
// The optional "Rops-Fence" header of a request of one group record (GET,
// POST or DELETE) carries the fence of the operation it is made for
// (core.WithFence), a timestamp as the timestamp header's; a fence that is
// repeated, over MaxTokenLen or not such a number gets 400. A node that
// fences refuses a request whose fence is below one a later request on the
// id carried with 409 "Stale: ..." and the node's fence in Rops-Fence,
// which the Client returns as a core.EStale error with that Fence. Every
// answer of a Server carries "Rops-Protocol: 2", the version of these
// extensions, by which a Client tells a node's answer from a proxy's and
// keeps what the node said it can do (Client.Protocol). Under
// ServerOptions.Original, the server ignores Rops-Fence and sends no Rops-
// header. docs/protocol.md describes the extensions and their versions.
package httpapi
