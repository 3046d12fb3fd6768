package httpapi

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

// Streamed listings. GET /groups?after=<id>&stream=1 answers every record
// after <id> in one answer of the usual shape, {"groups": [...], "next":
// null}, written as the node's store reads the records (core.Scanner), so
// that neither side holds more than a buffer of them: Stats reads a node
// in one request instead of one per page. A limit= still bounds the
// answer, without MaxListLimit's bound. A server that does not know
// stream= (an older rops) ignores it and answers a page whose "next" says
// where to go on: the client follows it. A listing that fails once records
// were sent is cut off without its end, so that the client reports the
// broken stream instead of a short count.

// Bounds of a streamed answer.
const (
	// streamFlush is how many bytes of records the server gathers before
	// it writes them.
	streamFlush = 32 << 10
	// streamWriteTimeout bounds each write of a streamed answer: a client
	// that stops reading cannot hold the node's snapshot for good.
	streamWriteTimeout = 30 * time.Second
	// maxJSONString bounds a string the client decodes from a listing.
	maxJSONString = 64 << 10
	// maxJSONDepth bounds the nesting of a value the client skips.
	maxJSONDepth = 32
)

// handleList answers GET /groups: a page of the node's records, or with
// stream=1 all of them. Records are written as the node reads them when
// the node is a core.Scanner, else from a page List returns.
func (s *Server) handleList(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	n, ok := s.node(w, r.Header[headerNode])
	if !ok {
		return
	}
	q := r.URL.Query()
	stream, herr := parseStream(q["stream"])
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	var limit int
	if stream {
		limit, herr = parseStreamLimit(q["limit"])
	} else {
		limit, herr = parseLimit(q["limit"])
	}
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	var after core.GroupID
	if a := q.Get("after"); a != "" {
		if after, herr = parseID(a); herr != nil {
			writeHTTPError(w, herr)
			return
		}
	}
	lw := &listWriter{w: w}
	sc, ok := n.(core.Scanner)
	if !ok {
		// A page in memory, so at most MaxListLimit records: a
		// streaming client follows its "next".
		size := min(cmp.Or(limit, MaxListLimit), MaxListLimit)
		page, err := n.List(ctx, after, size)
		if err != nil {
			nodeError(w, n, err, "", "")
			return
		}
		for _, rec := range page {
			lw.add(rec)
		}
		lw.end(len(page) == size)
		return
	}
	err := sc.Scan(ctx, after, func(rec core.Record) bool {
		lw.add(rec)
		return (limit == 0 || lw.n < limit) && lw.err == nil
	})
	switch {
	case err != nil && !lw.started:
		nodeError(w, n, err, "", "")
	case err != nil || lw.err != nil:
		// 200 went out already: only a cut-off answer can say it failed.
		panic(http.ErrAbortHandler)
	default:
		lw.end(limit > 0 && lw.n == limit)
	}
}

// parseStream reads stream=: absent, or 1.
func parseStream(q []string) (bool, *httpError) {
	switch {
	case len(q) == 0:
		return false, nil
	case len(q) == 1 && q[0] == "1":
		return true, nil
	}
	return false, reject(http.StatusNotAcceptable, fmt.Sprintf("invalid stream %q: give stream=1, or leave it out for a page", q[0]))
}

// parseStreamLimit reads the limit= of a stream: absent (0: no limit), or
// any positive number.
func parseStreamLimit(q []string) (int, *httpError) {
	if len(q) == 0 || q[0] == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(q[0])
	if err != nil || n < 1 {
		return 0, reject(http.StatusNotAcceptable,
			fmt.Sprintf("invalid limit %q: give a whole number from 1, or leave it out for every record", q[0]))
	}
	return n, nil
}

// listWriter writes a GET /groups answer record by record: the status and
// the head with the first write, so that an error before any record can
// still be answered as one.
type listWriter struct {
	w       http.ResponseWriter
	buf     []byte
	n       int          // records added
	last    core.GroupID // the last one
	started bool         // the status is written
	err     error        // of a write: the client is gone or too slow
}

func (lw *listWriter) add(rec core.Record) {
	if lw.buf == nil {
		lw.buf = make([]byte, 0, streamFlush+512)
		lw.buf = append(lw.buf, `{"groups": [`...)
	}
	if lw.n > 0 {
		lw.buf = append(lw.buf, ", "...)
	}
	lw.buf = appendRecord(lw.buf, string(rec.ID), string(rec.Token))
	lw.n++
	lw.last = rec.ID
	if len(lw.buf) >= streamFlush {
		lw.flush()
	}
}

// end writes the rest of the answer: "next" is the last id if more may
// follow.
func (lw *listWriter) end(more bool) {
	if lw.buf == nil {
		lw.buf = append(lw.buf, `{"groups": [`...)
	}
	lw.buf = append(lw.buf, `], "next": `...)
	if more && lw.n > 0 {
		lw.buf = appendJSONString(lw.buf, string(lw.last))
	} else {
		lw.buf = append(lw.buf, "null"...)
	}
	lw.buf = append(lw.buf, "}\n"...)
	lw.flush()
	if lw.started {
		// The connection serves the next request without this bound.
		_ = http.NewResponseController(lw.w).SetWriteDeadline(time.Time{})
	}
}

func (lw *listWriter) flush() {
	if lw.err != nil {
		return
	}
	if !lw.started {
		lw.started = true
		lw.w.Header()["Content-Type"] = contentJSON
		lw.w.WriteHeader(http.StatusOK)
	}
	// A writer that cannot set deadlines (a test's recorder) writes
	// without.
	_ = http.NewResponseController(lw.w).SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, lw.err = lw.w.Write(lw.buf)
	lw.buf = lw.buf[:0]
}

// Scan streams the node's records after after with GET /groups?stream=1
// (core.Scanner), following "next" from a server that answers in pages.
// It returns an EUnsupported error from a server without GET /groups, such
// as the original, and a transient error naming the last record received
// if the answer breaks off.
func (c *Client) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	for {
		path := "/groups?after=" + url.QueryEscape(string(after)) + "&stream=1"
		next, stopped, err := c.groups(ctx, path, after, fn)
		if err != nil || stopped || next == "" {
			return err
		}
		after = next
	}
}

// List sends GET /groups, as many times as it takes to fill limit (a server
// pages at most MaxListLimit records). It returns an EUnsupported error
// from a server without GET /groups, such as the original.
func (c *Client) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	if limit < 1 {
		limit = core.DefaultPageSize
	}
	all := []core.Record{}
	for len(all) < limit {
		ask := min(limit-len(all), MaxListLimit)
		path := "/groups?after=" + url.QueryEscape(string(after)) + "&limit=" + strconv.Itoa(ask)
		got := 0
		_, _, err := c.groups(ctx, path, after, func(rec core.Record) bool {
			got++
			all = append(all, rec)
			return got <= ask
		})
		if err != nil {
			return nil, err
		}
		if got > ask {
			return nil, c.badAnswer(http.MethodGet, path, "a page of group records",
				fmt.Errorf("more than %d records for limit=%d", ask, ask))
		}
		if got < ask {
			break
		}
		after = all[len(all)-1].ID
	}
	return all, nil
}

// groups sends GET path, a listing of the records after after, and calls
// fn with each record of the answer as it arrives, until fn returns false
// (stopped). next is the answer's "next", "" if null.
func (c *Client) groups(ctx context.Context, path string, after core.GroupID, fn func(core.Record) bool) (next core.GroupID, stopped bool, err error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil, "", "")
	if err != nil {
		return "", false, err
	}
	defer drain(resp)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			return "", false, c.transportError(ctx, http.MethodGet, path, err, true)
		}
		return "", false, c.answerError(opList, http.MethodGet, path, resp.StatusCode, resp.Header, data)
	}
	last := after
	d := groupsDecoder{r: bufio.NewReaderSize(resp.Body, 32<<10)}
	next, stopped, err = d.decode(func(rec core.Record) bool {
		last = rec.ID
		return fn(rec)
	})
	if _, bad := errors.AsType[*syntaxError](err); bad {
		return "", false, c.badAnswer(http.MethodGet, path, "a page of group records", err)
	}
	if err != nil {
		// The answer broke off: the server, or the way to it, failed.
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", false, &core.Error{Code: core.ETransient, Err: err, Message: fmt.Sprintf(
			"%s: GET %s: the listing broke off after %s: %v", c.name, path, lastID(last), err)}
	}
	if !stopped && next != "" && next <= after {
		return "", false, c.badAnswer(http.MethodGet, path, "a page of group records",
			fmt.Errorf("next %q does not come after %q", next, after))
	}
	return next, stopped, nil
}

// lastID names the last id received, for an error.
func lastID(id core.GroupID) string {
	if id == "" {
		return "no record"
	}
	return "id " + quoteClipped(string(id), 40)
}

// syntaxError is an answer that is not the JSON of a listing.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

// groupsDecoder reads a GET /groups answer,
//
//	{"groups": [{"groupId": "<id>", "timestamp": "<token>"}, ...], "next": "<id>" or null}
//
// a record at a time as it arrives, so that a listing of any length takes
// the memory of one record. It is hand-written because encoding/json's
// streaming Decoder costs several times as much per record, and jsontext
// needs GOEXPERIMENT=jsonv2 in Go 1.26 (BENCHMARKS.md, "Stream decoder vs
// encoding/json"). It
// takes any JSON of that shape: any spacing and key order, escapes, keys it
// does not know (skipped). A body that ends early is an io error
// (io.ErrUnexpectedEOF if it just ends); one that is not such JSON a
// *syntaxError.
type groupsDecoder struct {
	r   *bufio.Reader
	buf []byte // the string being read
}

// decode reads the answer, calling fn with each record until it returns
// false (stopped: the rest is not read).
func (d *groupsDecoder) decode(fn func(core.Record) bool) (next core.GroupID, stopped bool, err error) {
	if err := d.expect('{'); err != nil {
		return "", false, err
	}
	seen := false // "groups"
	for first := true; ; first = false {
		c, err := d.next()
		if err != nil {
			return "", false, err
		}
		if c == '}' && first {
			break
		}
		if !first {
			if c == '}' {
				break
			}
			if c != ',' {
				return "", false, d.unexpected(c, "',' or '}'")
			}
			if c, err = d.next(); err != nil {
				return "", false, err
			}
		}
		key, err := d.key(c)
		if err != nil {
			return "", false, err
		}
		// Keys match as encoding/json matches them: case-insensitively.
		switch {
		case strings.EqualFold(key, "groups"):
			// encoding/json would take the last of two: refuse them.
			if seen {
				return "", false, &syntaxError{`"groups" given twice`}
			}
			seen = true
			if stopped, err = d.records(fn); err != nil || stopped {
				return "", stopped, err
			}
		case strings.EqualFold(key, "next"):
			s, null, err := d.stringOrNull()
			if err != nil {
				return "", false, err
			}
			next = core.GroupID(s)
			if null {
				next = ""
			}
		default:
			if err := d.skip(0); err != nil {
				return "", false, err
			}
		}
	}
	// The rest must be space up to a clean end of the body: a body cut
	// after the object still fails here.
	for {
		c, err := d.r.ReadByte()
		if err == io.EOF {
			return next, false, nil
		}
		if err != nil {
			return "", false, err
		}
		if !isSpace(c) {
			return "", false, d.unexpected(c, "the end of the answer")
		}
	}
}

// records reads the array of records, calling fn with each.
func (d *groupsDecoder) records(fn func(core.Record) bool) (stopped bool, err error) {
	c, err := d.next()
	if err != nil {
		return false, err
	}
	if c == 'n' {
		return false, d.literal("ull")
	}
	if c != '[' {
		return false, d.unexpected(c, "'['")
	}
	for first := true; ; first = false {
		c, err := d.next()
		if err != nil {
			return false, err
		}
		if c == ']' && first {
			return false, nil
		}
		if !first {
			if c == ']' {
				return false, nil
			}
			if c != ',' {
				return false, d.unexpected(c, "',' or ']'")
			}
			if c, err = d.next(); err != nil {
				return false, err
			}
		}
		if c != '{' {
			return false, d.unexpected(c, "a record")
		}
		rec, err := d.record()
		if err != nil {
			return false, err
		}
		if !fn(rec) {
			return true, nil
		}
	}
}

// record reads a record's keys and values, after its '{'.
func (d *groupsDecoder) record() (core.Record, error) {
	var rec core.Record
	hasID := false
	for first := true; ; first = false {
		c, err := d.next()
		if err != nil {
			return rec, err
		}
		if c == '}' && (first || hasID) {
			if !hasID {
				return rec, &syntaxError{"a record without groupId"}
			}
			return rec, nil
		}
		if !first {
			if c == '}' {
				return rec, &syntaxError{"a record without groupId"}
			}
			if c != ',' {
				return rec, d.unexpected(c, "',' or '}'")
			}
			if c, err = d.next(); err != nil {
				return rec, err
			}
		}
		key, err := d.key(c)
		if err != nil {
			return rec, err
		}
		switch {
		case strings.EqualFold(key, "groupId"):
			s, null, err := d.stringOrNull()
			if err != nil {
				return rec, err
			}
			if null || s == "" {
				return rec, &syntaxError{"a record with an empty groupId"}
			}
			rec.ID, hasID = core.GroupID(s), true
		case strings.EqualFold(key, "timestamp"):
			s, _, err := d.stringOrNull()
			if err != nil {
				return rec, err
			}
			rec.Token = core.Token(s)
		default:
			if err := d.skip(0); err != nil {
				return rec, err
			}
		}
	}
}

// key reads an object's key, whose first byte c is, and the ':' after it.
func (d *groupsDecoder) key(c byte) (string, error) {
	if c != '"' {
		return "", d.unexpected(c, "a key")
	}
	k, err := d.str()
	if err != nil {
		return "", err
	}
	return k, d.expect(':')
}

// stringOrNull reads a string or null.
func (d *groupsDecoder) stringOrNull() (s string, null bool, err error) {
	c, err := d.next()
	switch {
	case err != nil:
		return "", false, err
	case c == '"':
		s, err := d.str()
		return s, false, err
	case c == 'n':
		return "", true, d.literal("ull")
	}
	return "", false, d.unexpected(c, "a string or null")
}

// str reads a string after its opening quote. Strings without escapes, the
// common case, are taken as they are; the rest go through encoding/json,
// so that every escape means what JSON says.
func (d *groupsDecoder) str() (string, error) {
	// Fast path: the whole string is in the buffer, printable ASCII
	// without escapes.
	if b, err := d.r.Peek(d.r.Buffered()); err == nil {
		for i, c := range b {
			if c == '"' {
				s := string(b[:i])
				_, _ = d.r.Discard(i + 1)
				return s, nil
			}
			if c < ' ' || c == '\\' || c >= utf8.RuneSelf {
				break
			}
		}
	}
	d.buf = append(d.buf[:0], '"')
	for {
		chunk, err := d.r.ReadSlice('"')
		d.buf = append(d.buf, chunk...)
		if len(d.buf) > maxJSONString {
			return "", &syntaxError{fmt.Sprintf("a string longer than %d bytes", maxJSONString)}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", eof(err)
		}
		// A quote after an odd number of backslashes is escaped.
		bs := 0
		for i := len(d.buf) - 2; i > 0 && d.buf[i] == '\\'; i-- {
			bs++
		}
		if bs%2 == 0 {
			break
		}
	}
	raw := d.buf[1 : len(d.buf)-1]
	plain := utf8.Valid(raw)
	for _, c := range raw {
		if c == '\\' || c < ' ' {
			plain = false
			break
		}
	}
	if plain {
		return string(raw), nil
	}
	var s string
	if err := json.Unmarshal(d.buf, &s); err != nil {
		return "", &syntaxError{fmt.Sprintf("an invalid string: %v", err)}
	}
	return s, nil
}

// skip reads a value of any kind and drops it.
func (d *groupsDecoder) skip(depth int) error {
	if depth > maxJSONDepth {
		return &syntaxError{"values nested too deep"}
	}
	c, err := d.next()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		_, err := d.str()
		return err
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		for first := true; ; first = false {
			c, err := d.next()
			if err != nil {
				return err
			}
			if c == end && first {
				return nil
			}
			if !first {
				if c == end {
					return nil
				}
				if c != ',' {
					return d.unexpected(c, "',' or the end")
				}
				if c, err = d.next(); err != nil {
					return err
				}
			}
			if end == '}' {
				if _, err := d.key(c); err != nil {
					return err
				}
			} else if err := d.r.UnreadByte(); err != nil {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case 't':
		return d.literal("rue")
	case 'f':
		return d.literal("alse")
	case 'n':
		return d.literal("ull")
	}
	if c != '-' && (c < '0' || c > '9') {
		return d.unexpected(c, "a value")
	}
	num := append(d.buf[:0], c)
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return eof(err)
		}
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			if !json.Valid(num) {
				return &syntaxError{fmt.Sprintf("an invalid number %q", num)}
			}
			return d.r.UnreadByte()
		}
		if num = append(num, c); len(num) > maxJSONString {
			return &syntaxError{"a number too long"}
		}
	}
}

// literal reads the rest of true, false or null.
func (d *groupsDecoder) literal(rest string) error {
	for i := 0; i < len(rest); i++ {
		c, err := d.r.ReadByte()
		if err != nil {
			return eof(err)
		}
		if c != rest[i] {
			return d.unexpected(c, strconv.Quote(rest[i:i+1]))
		}
	}
	return nil
}

// next returns the next byte that is not space.
func (d *groupsDecoder) next() (byte, error) {
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return 0, eof(err)
		}
		if !isSpace(c) {
			return c, nil
		}
	}
}

func (d *groupsDecoder) expect(want byte) error {
	c, err := d.next()
	if err == nil && c != want {
		err = d.unexpected(c, strconv.Quote(string(want)))
	}
	return err
}

func (d *groupsDecoder) unexpected(c byte, want string) error {
	return &syntaxError{fmt.Sprintf("%q where %s should be", c, want)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// eof turns the end of the body inside the JSON into io.ErrUnexpectedEOF.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Scan streams the node's records for GET /stats (core.Scanner), with its
// List's errors: a node that cannot stream is read page by page.
func (n statsNode) Scan(ctx context.Context, after core.GroupID, fn func(core.Record) bool) error {
	return n.down(core.Scan(ctx, n.Node, after, fn))
}
