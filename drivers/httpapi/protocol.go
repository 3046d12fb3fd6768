package httpapi

import (
	"strconv"
	"unicode/utf8"
)

// The wire protocol's names and fixed messages, shared by the server and the
// client so that the two cannot drift apart. The messages are the original
// server's: the client recognizes an answer by them where the original's
// status alone is ambiguous (a 404 for a missing record and a 404 for a
// wrong URL look alike).
const (
	// headerNode names the node a request is for (canonical form).
	headerNode = "Node"
	// headerTimestamp carries the operation's token (canonical form).
	headerTimestamp = "Timestamp"

	// msgExists answers a POST of an id held with another token.
	msgExists = "Perhaps the object exists."
	// msgNotFound starts the answer to a GET or DELETE of a missing record.
	msgNotFound = "No group record found with id "
	// msgFenced answers, with 409, a POST that a tombstone refuses: a
	// delete of the id with this timestamp ran on the node already, so
	// the create is a late one and is never applied. Not the original's:
	// it kept no tombstones.
	msgFenced = "Fenced: this group record was deleted with this timestamp; a create with it is refused."

	// headerTombstones is on every answer of a Server for a node that
	// keeps tombstones (core.Fencer), with their retention, such as
	// "10m0s" (canonical form). The original server never sends it.
	headerTombstones = "Rops-Tombstones"
	// headerApplied, with the value "false", marks a 503 as the node's
	// own "down": the request was not applied. A 503 without it may come
	// from a proxy that forwarded the request (canonical form).
	headerApplied = "Rops-Applied"

	// queryOlderThan makes DELETE /group a delete without a read (a
	// core.Remover's Remove): ?older_than=<token> removes the record only
	// if its timestamp is older, and the answer names what it removed. Not
	// the original's: a server that ignores it deletes unconditionally.
	queryOlderThan = "older_than"
	// headerRemoves is on every answer of a Server for a node that serves
	// older_than, with the value "older_than" (canonical form); a Client
	// sends older_than only to such a node.
	headerRemoves = "Rops-Removes"
	// headerRemoved carries, on the 200 of an older_than DELETE, the
	// timestamp of the record it removed, now or in an earlier copy of
	// the same request (canonical form).
	headerRemoved = "Rops-Removed"
	// headerHeld carries, on the 409 of an older_than DELETE that found a
	// record not older (msgNewer), that record's timestamp (canonical
	// form).
	headerHeld = "Rops-Held"
	// msgNewer answers, with 409, an older_than DELETE of a record whose
	// timestamp is not older: nothing is removed.
	msgNewer = "Newer: this group record's timestamp is not older than older_than; it is not deleted."

	// headerProtocol is on every answer of a Server that is not the
	// original's imitation, with the version of rops' extensions it
	// speaks, protocolVersion (canonical form). A Client takes an answer
	// that carries it for its node's own word on what the node can do
	// (noteCapabilities); a proxy's page never carries it. Version 1,
	// which sent no such header, announced tombstones (Rops-Tombstones)
	// and older_than deletes (Rops-Removes); 2 adds fences (Rops-Fence).
	// docs/protocol.md describes the versions.
	headerProtocol = "Rops-Protocol"
	// protocolVersion is the version of rops' extensions this package
	// speaks.
	protocolVersion = 2

	// headerFence carries, on a request of POST, DELETE or GET of one
	// group record, the fence of the operation on whose behalf it is made
	// (core.WithFence), a timestamp as the timestamp header's; the Server
	// puts it in the request's context for the node to check. On the 409
	// of a request that the node refused as stale (msgStale), it carries
	// the id's fence that the node holds (core.Error.Fence). Canonical
	// form. The original server ignores it.
	headerFence = "Rops-Fence"
	// msgStale answers, with 409, a request whose fence is below the one
	// a later holder of the id's lock sent (core.EStale): nothing was
	// applied, and retrying cannot help. Not the original's: it had no
	// fences.
	msgStale = "Stale: a later holder of this group record's lock sent a greater fence; the request is refused."

	// DefaultListLimit is the page size of GET /groups without limit=.
	DefaultListLimit = 1000
	// MaxListLimit is the largest limit= GET /groups accepts.
	MaxListLimit = 10000
	// DefaultMaxBody is the default limit of a request body, in bytes.
	DefaultMaxBody = 64 << 10
	// MaxTokenLen is the longest timestamp header the server accepts, in
	// bytes: tokens are stored with every record.
	MaxTokenLen = 256
)

// notFoundMessage is the original's answer to a GET or DELETE of a record
// that is not there; token is the DELETE's condition, if any.
func notFoundMessage(id, token string) string {
	if token == "" {
		return msgNotFound + "'" + id + "'"
	}
	return msgNotFound + "'" + id + "' and timestamp '" + token + "'"
}

// Content types, as header value slices that every response shares: building
// them once keeps the hot path free of allocations. Nothing may append to
// them.
var (
	contentJSON = []string{"application/json"}
	contentText = []string{"text/plain; charset=utf-8"}
	notApplied  = []string{"false"}                       // the value of headerApplied
	removesOn   = []string{queryOlderThan}                // the value of headerRemoves
	protocolOn  = []string{strconv.Itoa(protocolVersion)} // the value of headerProtocol
)

const hex = "0123456789abcdef"

// appendJSONString appends s to b as a JSON string. It escapes what JSON
// requires, plus U+2028 and U+2029 as encoding/json does, and replaces each
// invalid UTF-8 byte with U+FFFD, so the result always decodes; it is the
// hot path's replacement for encoding/json.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// quoteClipped returns s Go-quoted, cut to at most max bytes of s at a
// character boundary, with "..." after the quote if it was cut: safe to
// print whatever a peer sent.
func quoteClipped(s string, max int) string {
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// appendErrorBody appends the JSON error body {"message": msg, "status": status}.
func appendErrorBody(b []byte, status int, msg string) []byte {
	b = append(b, `{"message": `...)
	b = appendJSONString(b, msg)
	b = append(b, `, "status": `...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, "}\n"...)
}

// appendRecord appends rec as the GET /group/<id> body does.
func appendRecord(b []byte, id, token string) []byte {
	b = append(b, `{"groupId": `...)
	b = appendJSONString(b, id)
	b = append(b, `, "timestamp": `...)
	b = appendJSONString(b, token)
	return append(b, '}')
}
