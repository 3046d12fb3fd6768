package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/core/pool"
)

// DefaultUserAgent is the User-Agent of a Client without one.
const DefaultUserAgent = "rops/1"

// DefaultMaxConns sizes the pool of the HTTP client that Clients share when
// ClientOptions.HTTP is nil: a bulk job's default concurrency times three
// nodes, with room to spare.
const DefaultMaxConns = 64

// Limits of what a Client reads from an answer.
const (
	// maxAnswer bounds a body the client reads: a page of MaxListLimit
	// records of maximal ids and tokens fits.
	maxAnswer = 8 << 20
	// maxDrain bounds what the client reads of a body it does not need,
	// so that the connection can be reused; past it the connection is
	// closed instead.
	maxDrain = 64 << 10
)

// Timeouts of NewHTTPClient. The coordinator's context bounds each request;
// these only catch what it cannot see.
const (
	dialTimeout           = time.Second
	tlsHandshakeTimeout   = 5 * time.Second
	responseHeaderTimeout = time.Minute
	idleConnTimeout       = 90 * time.Second
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// HTTP sends the requests (nil: an http.Client from
	// NewHTTPClient(DefaultMaxConns) that all such Clients share). Give
	// all Clients of a job the same one, so they share one pool.
	HTTP *http.Client
	// UserAgent is sent with every request (empty: DefaultUserAgent).
	UserAgent string
	// Batch gathers the Creates, Deletes and Removes that calls in flight
	// send to a node that serves batches (Rops-Batch) into one POST
	// /v1/batch (see docs/protocol.md): fewer round trips, each item
	// answered as if alone. Off unless set here; the rops CLI sets it
	// unless --no-batches.
	Batch bool
	// MaxBatch bounds the items of one batch (0: DefaultMaxBatch); the
	// node's own limit, in Rops-Batch, bounds it too.
	MaxBatch int
}

// NewHTTPClient returns an http.Client for Clients: one keep-alive pool that
// keeps up to maxConns idle connections (per host and in all), so that a job
// of that many concurrent requests reuses its connections instead of
// opening a socket per request, as Go's default of 2 idle per host would.
// It dials with a short timeout (a dial that fails before anything was
// written is certainly not applied), asks for no compression, and follows
// no redirects: a Client reports them, as a write must not be resent
// elsewhere. Each request's time limit comes from its context. The result
// is safe for concurrent use.
func NewHTTPClient(maxConns int) *http.Client {
	if maxConns < 1 {
		maxConns = DefaultMaxConns
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			MaxIdleConns:          maxConns,
			MaxIdleConnsPerHost:   maxConns,
			IdleConnTimeout:       idleConnTimeout,
			TLSHandshakeTimeout:   tlsHandshakeTimeout,
			ResponseHeaderTimeout: responseHeaderTimeout,
			DisableCompression:    true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var sharedHTTP = sync.OnceValue(func() *http.Client { return NewHTTPClient(DefaultMaxConns) })

// Client is a core.Node served over HTTP by a Server, or by the original
// system's server: it sends each call as the original's connector did, with
// the node named in the node header and the token in the timestamp header.
// Against the original server, Get returns records without a token and List
// returns an EUnsupported error (core.Coordinator.Stats then compares
// counts). A Client is safe for concurrent use.
//
// A Client fences (core.Fencer) and deletes without a read (core.Remover)
// as the node said it can, in the Rops- headers a rops Server puts on every
// answer; the original server's answers carry none. It keeps what the node
// said until the node says otherwise: an answer that may not be the node's,
// such as a proxy's 502 page, changes nothing (see noteCapabilities). Every
// request of one group record made under a fence (core.WithFence) carries
// it in a Rops-Fence header, and a node's refusal of it as stale is an
// EStale error with the node's fence.
type Client struct {
	name string
	base string // without a trailing slash
	// group is base+"/group" parsed, with the Host of its request: the
	// URL of every create and delete, shared by their requests, which
	// only read it.
	group     *url.URL
	http      *http.Client
	node      []string // header values, built once
	userAgent []string
	// caps is what the node last said it can do; never nil.
	caps atomic.Pointer[capabilities]

	batch    bool
	maxBatch int
	batches  *pool.Gatherer[*call]
	stats    clientStats
	// host is the base's host:port (see refusals).
	host string
}

// capabilities is what a node said it can do, as one value, so that an
// answer replaces all of it at once.
type capabilities struct {
	// protocol is the version of rops' extensions the node speaks: the
	// Rops-Protocol header's, 1 for a rops server of version 1 (which
	// sent Rops-Tombstones but no version), 0 for a server that
	// announces none.
	protocol int
	// tombstones is the node's tombstone retention, 0 if it keeps none.
	tombstones time.Duration
	// removes is whether the node serves older_than deletes.
	removes bool
	// tombstonesText is the Rops-Tombstones header tombstones was read
	// from, "" if there was none.
	tombstonesText string
	// batch is the most items the node takes in one POST /batch, 0 if it
	// serves none (Rops-Batch).
	batch int
}

// noCapabilities is what a Client knows before any answer, and what a
// server that announces nothing can do.
var noCapabilities = &capabilities{}

var (
	_ core.Node            = (*Client)(nil)
	_ core.Fencer          = (*Client)(nil)
	_ core.Remover         = (*Client)(nil)
	_ core.Batcher         = (*Client)(nil)
	_ core.TombstoneKeeper = (*Client)(nil)
)

// NewClient returns a Client for the node called node on the server at
// baseURL, such as http://127.0.0.1:8080/v1. It returns an EInvalid error if
// baseURL is not an http or https URL without query, fragment or user, with
// a port from 1 to 65535 if any, or if node is empty or holds spaces or
// control characters.
func NewClient(baseURL, node string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q (%v): give an http:// or https:// URL, such as http://127.0.0.1:8080/v1", baseURL, unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q: give an http:// or https:// URL, such as http://127.0.0.1:8080/v1", baseURL)
	case u.Host == "":
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q: no host", baseURL)
	case !validPort(u.Port()):
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q: port %s is out of range: give 1 to 65535", baseURL, u.Port())
	case u.User != nil:
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q: rops sends no credentials; remove the user", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q: remove the query and fragment", baseURL)
	}
	if node == "" || strings.IndexFunc(node, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return nil, core.Errorf(core.EInvalid, "invalid node name %q: give the name the server knows the node by, such as node01", node)
	}
	c := &Client{
		name:      node,
		base:      strings.TrimRight(u.String(), "/"),
		http:      opts.HTTP,
		node:      []string{node},
		userAgent: []string{opts.UserAgent},
		batch:     opts.Batch,
		maxBatch:  cmp.Or(max(opts.MaxBatch, 0), DefaultMaxBatch),
	}
	if c.group, err = url.Parse(c.base + "/group"); err != nil {
		return nil, core.Errorf(core.EInvalid, "invalid server URL %q (%v)", baseURL, unwrapURLError(err))
	}
	// The Host that http.NewRequest would give its request, which then
	// takes it from the URL.
	c.group.Host = strings.TrimSuffix(c.group.Host, ":")
	c.host = u.Host
	c.batches = pool.NewGatherer(c.sendBatch, c.batchLimit)
	if c.http == nil {
		c.http = sharedHTTP()
	}
	c.caps.Store(noCapabilities)
	if opts.UserAgent == "" {
		c.userAgent[0] = DefaultUserAgent
	}
	return c, nil
}

// Name returns the node's name.
func (c *Client) Name() string { return c.name }

// URL returns the server's base URL, without a trailing slash.
func (c *Client) URL() string { return c.base }

// Fences reports whether the node said that it keeps tombstones, in the
// last answer that was its own word (see noteCapabilities). It is false
// until a first such answer, and against the original server.
func (c *Client) Fences() bool { return c.caps.Load().tombstones > 0 }

// TombstoneTTL returns how long the node keeps a tombstone, as it said
// (see Fences); 0 if it said none.
func (c *Client) TombstoneTTL() time.Duration { return c.caps.Load().tombstones }

// Removes reports whether the node said that it serves deletes without a
// read (core.Remover), as Fences: false until a first answer, and against
// the original server.
func (c *Client) Removes() bool { return c.caps.Load().removes }

// Protocol returns the version of rops' extensions the node said it speaks
// (see Fences): that of its Rops-Protocol header, 2 for a Server of this
// package; 1 for a rops server of version 1, which announced tombstones
// but no version; 0 for a server that announces none, such as the
// original, and before any answer. docs/protocol.md lists the versions.
func (c *Client) Protocol() int { return c.caps.Load().protocol }

// noteCapabilities records what an answer of status with header h says the
// node can do, according to who said it.
//
//   - An answer with Rops-Protocol (a positive version) is a rops node's
//     own, and says all the node can do now: it replaces what was noted,
//     less as well as more. A node restarted over a store that keeps no
//     tombstones says so, and must not be relied on for them.
//   - One without it but with Rops-Tombstones comes from a rops server of
//     version 1, which put that header on every answer for a node that
//     keeps tombstones: it says the same, as version 1 said it.
//   - A success with neither comes from a server that announces nothing:
//     the original, say, put behind the URL in place of a rops node. No
//     proxy makes a success of its own (it passes the node's on, headers
//     and all), and a rops node marks every answer, so this is the node's
//     word too, and it says "nothing": what was noted is dropped.
//   - Any other answer may not be the node's: a proxy's 502, 503 or 504
//     page, a rate limiter's 429, a redirect. It changes nothing.
//
// Why keep a capability past an answer that is not the node's: what the
// node said holds until the node says otherwise, and a proxy's page says
// nothing of it. Dropping it there (as the Client did before protocol 2)
// made one proxy error turn fencing off for the next operation, whose undo
// then waited out the whole request lifetime. Why drop it on any answer
// that is the node's, even one without a version: a capability kept too
// long is the unsafe error (an undo that trusts tombstones the node does
// not keep, an older_than delete that the original runs unconditionally),
// one dropped too soon only a slow one. A value that is not a positive
// duration counts as no tombstones; older_than deletes need tombstones.
func (c *Client) noteCapabilities(status int, h http.Header) {
	next := capabilities{protocol: protocolOf(h[headerProtocol])}
	tombstones := h[headerTombstones]
	switch {
	case next.protocol > 0:
	case len(tombstones) > 0:
		next.protocol = 1
	case status >= 200 && status < 300:
	default:
		return
	}
	cur := c.caps.Load()
	if len(tombstones) > 0 {
		// Every answer of a node says the same, so the last text
		// read spares parsing it again.
		next.tombstonesText = tombstones[0]
		if next.tombstonesText == cur.tombstonesText {
			next.tombstones = cur.tombstones
		} else if d, err := time.ParseDuration(tombstones[0]); err == nil && d > 0 {
			next.tombstones = d
		}
	}
	v := h[headerRemoves]
	next.removes = next.tombstones > 0 && len(v) > 0 && v[0] == removesOn[0]
	if next.protocol > 0 {
		next.batch = protocolOf(h[headerBatch])
	}
	if *cur != next {
		// A copy, so that next stays on the stack when nothing changed.
		changed := next
		c.caps.Store(&changed)
	}
}

// protocolOf returns the version that the values v of a Rops-Protocol
// header say, 0 if there are none or the first is not a decimal number.
func protocolOf(v []string) int {
	if len(v) == 0 || !allDigits(v[0]) {
		return 0
	}
	n, err := strconv.Atoi(v[0])
	if err != nil {
		return 0
	}
	return n
}

// Create sends POST /group with id and token. It returns ErrExists if the
// node holds id with another token, and ErrFenced if a rops node refuses
// it because a delete of id with token ran there already (HTTP 409).
func (c *Client) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	c.stats.items.Add(1)
	if c.batching() {
		_, err := c.batched(ctx, &call{o: opCreate, id: id, token: token})
		return err
	}
	_, err := c.send(ctx, opCreate, http.MethodPost, "/group", groupBody(id), token, false)
	return err
}

// Delete sends DELETE /group with id, conditional on token if it is not
// empty. It returns ErrNotFound if the node holds no such record.
func (c *Client) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	c.stats.items.Add(1)
	if c.batching() {
		_, err := c.batched(ctx, &call{o: opDelete, id: id, token: token})
		return err
	}
	_, err := c.send(ctx, opDelete, http.MethodDelete, "/group", groupBody(id), token, false)
	return err
}

// Remove sends DELETE /group?older_than=before with id: a delete without a
// read, which removes the record only if its timestamp is older than
// before. It returns the removed record's timestamp (Rops-Removed),
// ErrNotFound if the node removed nothing, and ErrExists with the
// timestamp held (Rops-Held) if that is not older. A success without
// Rops-Removed comes from a server that ignored older_than and deleted
// whatever was there (Removes said otherwise): it returns "" and nil.
func (c *Client) Remove(ctx context.Context, id core.GroupID, before core.Token) (core.Token, error) {
	c.stats.items.Add(1)
	if c.batching() {
		return c.batched(ctx, &call{o: opDelete, remove: true, id: id, token: before})
	}
	path := removePath(before)
	resp, err := c.do(ctx, http.MethodDelete, path, groupBody(id), "", core.FenceOf(ctx))
	if err != nil {
		return "", err
	}
	a := newAnswer()
	defer a.release()
	defer a.drain(resp)
	if err := a.read(resp.Body); err != nil {
		return "", c.transportError(ctx, http.MethodDelete, path, err, true)
	}
	return c.removeAnswer(path, resp.StatusCode, resp.Header, a.bytes())
}

func removePath(before core.Token) string {
	return "/group?" + queryOlderThan + "=" + url.QueryEscape(string(before))
}

// removeAnswer returns what an answer of status, with header h and body
// data, to an older_than DELETE says: the removed record's timestamp, or
// an error.
func (c *Client) removeAnswer(path string, status int, h http.Header, data []byte) (core.Token, error) {
	switch {
	case status == http.StatusConflict:
		if msg, _ := answerMessage(status, h, data); msg == msgNewer && len(h[headerHeld]) == 1 {
			return core.Token(h[headerHeld][0]), &core.Error{Code: core.EExists, Err: &StatusError{Status: status},
				Message: fmt.Sprintf("%s: %s", c.name, msgNewer)}
		}
	case status < 200 || status >= 300:
	case !isAnswer(data, successBody[opDelete]):
		return "", c.notTheAnswer(opDelete, http.MethodDelete, path, status, data, successBody[opDelete])
	default:
		var removed core.Token
		if v := h[headerRemoved]; len(v) > 0 {
			removed = core.Token(v[0])
		}
		return removed, nil
	}
	return "", statusError(opDelete, status, h, data, time.Now())
}

// Get sends GET /group/<id>. It returns ErrNotFound if the node holds no
// such record, and a record with an empty token from the original server,
// which does not send one.
func (c *Client) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	c.stats.items.Add(1)
	path := "/group/" + escapeID(string(id))
	a, err := c.send(ctx, opGet, http.MethodGet, path, nil, "", true)
	if err != nil {
		return core.Record{}, err
	}
	defer a.release()
	var rec struct {
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(a.bytes(), &rec); err != nil {
		return core.Record{}, c.badAnswer(http.MethodGet, path, "a group record", err)
	}
	tok, err := tokenOf(rec.Timestamp)
	if err != nil {
		return core.Record{}, c.badAnswer(http.MethodGet, path, "a group record", err)
	}
	return core.Record{ID: id, Token: tok}, nil
}

// Count sends GET /stats, which every server has, and returns this node's
// count from it.
func (c *Client) Count(ctx context.Context) (int, error) {
	a, err := c.send(ctx, opCount, http.MethodGet, "/stats", nil, "", true)
	if err != nil {
		return 0, err
	}
	defer a.release()
	body := a.bytes()
	var st []json.RawMessage
	var counts map[string]int
	if json.Unmarshal(body, &st) == nil && len(st) == 2 && json.Unmarshal(st[1], &counts) != nil {
		counts = nil
	}
	if counts == nil {
		return 0, c.badAnswer(http.MethodGet, "/stats", `stats such as [true, {"node01": 0}]`, fmt.Errorf("got %.80q", body))
	}
	n, ok := counts[c.name]
	if !ok {
		return 0, &core.Error{Code: core.ERejected,
			Message: fmt.Sprintf("%s at %s: the server does not serve %s: its stats are %s", c.name, c.base, c.name, clip(string(bytes.TrimSpace(body))))}
	}
	return n, nil
}

// Ping sends GET /ping, which the original server and a rops server both
// answer PONG (the original answers GET /ping/ 404), and returns nil if the
// server answers so.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.send(ctx, opPing, http.MethodGet, "/ping", nil, "", false)
	return err
}

// send sends one request and, if read is set, returns the answer's body,
// which the caller must release. An answer that is not a success, or no
// answer, is returned as a core error (statusError, transportError).
// Bodies are always drained and closed, so that the connection goes back
// to the pool. A request of one group record carries ctx's fence.
func (c *Client) send(ctx context.Context, o op, method, path string, body []byte, token core.Token, read bool) (*answer, error) {
	var fence core.Token
	if o == opCreate || o == opDelete || o == opGet {
		fence = core.FenceOf(ctx)
	}
	resp, err := c.do(ctx, method, path, body, token, fence)
	if err != nil {
		return nil, err
	}
	a := newAnswer()
	err = c.check(ctx, o, method, path, resp, a, read)
	a.drain(resp)
	if err != nil || !read {
		a.release()
		return nil, err
	}
	return a, nil
}

// check reads what it needs of resp, the answer to o, into a, and returns
// the error it says if any.
func (c *Client) check(ctx context.Context, o op, method, path string, resp *http.Response, a *answer, read bool) error {
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	want := successBody[o]
	if ok && !read && want == "" {
		return nil
	}
	if err := a.read(resp.Body); err != nil {
		return c.transportError(ctx, method, path, err, true)
	}
	return c.answerError(o, method, path, resp.StatusCode, resp.Header, a.bytes())
}

// isWrite reports whether a request of method is a write: POST (a create
// or a batch) or DELETE.
func isWrite(method string) bool { return method == http.MethodPost || method == http.MethodDelete }

// isRopsBearer reports whether h, a 401 answer's header, is a rops
// server's call for its bearer token.
func isRopsBearer(h http.Header) bool {
	v := h.Get("Www-Authenticate")
	return strings.HasPrefix(v, "Bearer ") && strings.Contains(v, `realm="rops"`)
}

// answerError returns the error that an answer of status, with header h
// and body data, to o says, if any.
func (c *Client) answerError(o op, method, path string, status int, h http.Header, data []byte) error {
	if te := schemeError(status, data); te != nil {
		c.refused(te)
		return c.tlsFailure(te)
	}
	if status == http.StatusUnauthorized && (o == opCreate || o == opDelete) && isRopsBearer(h) {
		// The node's write token is missing or wrong: the server takes
		// no write of this pool, sent or to come (see refusals).
		err := statusError(o, status, h, data, time.Now())
		c.refusedWrites(err)
		return err
	}
	if status < 200 || status >= 300 {
		return statusError(o, status, h, data, time.Now())
	}
	if want := successBody[o]; want != "" && !isAnswer(data, want) {
		return c.notTheAnswer(o, method, path, status, data, want)
	}
	return nil
}

// do sends one request, with token in the timestamp header and fence in
// Rops-Fence if they are not empty, and returns the answer, whatever its
// status; the caller must drain it. No answer is returned as a core error
// (transportError).
func (c *Client) do(ctx context.Context, method, path string, body []byte, token, fence core.Token) (*http.Response, error) {
	if err := c.knownRefusal(isWrite(method)); err != nil {
		return nil, err // not sent
	}
	// wt sees every attempt the transport makes at this request, so that
	// a failure can say whether any byte of it may have left.
	tctx, wt := traceWrites(ctx)
	req, err := c.newRequest(tctx, method, path, body)
	if err != nil {
		wt.release()
		return nil, core.Errorf(core.EInvalid, "%s: %s %s: %v", c.name, method, path, unwrapURLError(err))
	}
	h := wt.newHeader()
	h["Node"], h["User-Agent"] = c.node, c.userAgent
	if body != nil {
		h["Content-Type"] = contentJSON
	}
	if token != "" || fence != "" {
		// One array, kept with the header, holds both values.
		vals := wt.vals[:0]
		if token != "" {
			if !validHeaderValue(string(token)) {
				wt.release()
				return nil, core.Errorf(core.EInvalid, "%s: invalid token %q: it cannot travel in a header", c.name, token)
			}
			// No Idempotency-Key: with it the transport would resend a POST
			// or DELETE whose connection closed after it was written, and a
			// write that landed could then come back as a refused dial,
			// "certainly not applied". The coordinator retries, knowing.
			vals = append(vals, string(token))
			h[headerTimestamp] = vals[0:1:1]
		}
		if fence != "" {
			if !validHeaderValue(string(fence)) {
				wt.release()
				return nil, core.Errorf(core.EInvalid, "%s: invalid fence %q: it cannot travel in a header", c.name, fence)
			}
			vals = append(vals, string(fence))
			h[headerFence] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	req.Header = h
	c.stats.roundTrips.Add(1)
	resp, err := c.http.Do(req)
	wrote := wt.wrote.Load()
	wt.release()
	if err != nil {
		return nil, c.transportError(ctx, method, path, err, wrote)
	}
	c.noteCapabilities(resp.StatusCode, resp.Header)
	return resp, nil
}

// newRequest returns the request of method to path with body (none if
// nil), as http.NewRequestWithContext makes it. The request of a create or
// a delete is built on the URL parsed once (c.group), without parsing it
// again nor copying it, as http.Client does a URL whose request names its
// Host: the same request on the wire, for less work.
func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	if path != "/group" {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		return http.NewRequestWithContext(ctx, method, c.base+path, rd)
	}
	r := http.Request{Method: method, URL: c.group, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	switch {
	case body == nil:
	case len(body) == 0:
		r.Body = http.NoBody
		r.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	default:
		// A body the transport knows to be in memory (a bytes.Reader,
		// here behind NopCloser) is written with the headers, in one
		// write; GetBody lets it send the request again on another
		// connection if nothing of it was written.
		r.ContentLength = int64(len(body))
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return r.WithContext(ctx), nil
}

// drain reads what is left of resp's body, up to maxDrain, and closes it,
// so that the connection can go back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	_ = resp.Body.Close()
}

// answer holds what a Client reads of one answer, in a buffer kept for the
// next (answers). It is not safe for concurrent use.
type answer struct {
	lim io.LimitedReader
	buf bytes.Buffer
}

// answers keeps answers' buffers from one request to the next.
var answers = sync.Pool{New: func() any { return new(answer) }}

// maxKeptAnswer bounds the buffer an answer keeps for the next: a rare
// large answer (a page of errors, a proxy's page) is not held for good.
const maxKeptAnswer = 64 << 10

func newAnswer() *answer {
	a := answers.Get().(*answer)
	a.buf.Reset()
	return a
}

// read reads body, up to maxAnswer bytes.
func (a *answer) read(body io.Reader) error {
	a.lim = io.LimitedReader{R: body, N: maxAnswer}
	_, err := a.buf.ReadFrom(&a.lim)
	a.lim.R = nil
	return err
}

// bytes returns what read read, valid until release.
func (a *answer) bytes() []byte { return a.buf.Bytes() }

// drain reads what is left of resp's body, up to maxDrain, and closes it,
// as drain does.
func (a *answer) drain(resp *http.Response) {
	a.lim = io.LimitedReader{R: resp.Body, N: maxDrain}
	_, _ = io.Copy(io.Discard, &a.lim)
	a.lim.R = nil
	_ = resp.Body.Close()
}

// release gives a's buffer to the next answer; a must not be used after.
func (a *answer) release() {
	if a.buf.Cap() <= maxKeptAnswer {
		answers.Put(a)
	}
}

// successBody is the body of the success of a call that returns no data,
// as the original server and a rops server send it (with a newline).
var successBody = map[op]string{opCreate: "CREATED", opDelete: "OK", opPing: "PONG"}

// isAnswer reports whether body says want: as plain text, a JSON string, or
// a JSON object whose message is want, with any surrounding space.
func isAnswer(body []byte, want string) bool {
	body = bytes.TrimSpace(body)
	if string(body) == want {
		return true
	}
	var s string
	if json.Unmarshal(body, &s) == nil {
		return s == want
	}
	var e struct {
		Message string `json:"message"`
	}
	return json.Unmarshal(body, &e) == nil && e.Message == want
}

// notTheAnswer is the error of a success whose body is not the answer of
// the call, such as a proxy's or a captive portal's page: the URL is not
// one of a rops or the original server. A write may have been passed on
// and applied all the same, so its error is transient ("may have been
// applied"), never a rejection that would count it as not applied.
func (c *Client) notTheAnswer(o op, method, path string, status int, body []byte, want string) error {
	code := core.ERejected
	if o == opCreate || o == opDelete {
		code = core.ETransient
	}
	return &core.Error{Code: code, Err: &StatusError{Status: status}, Message: fmt.Sprintf(
		"%s at %s: %s %s: the answer is %d %s with %s, not %s: is %s the API of a rops or the original server?",
		c.name, c.base, method, path, status, http.StatusText(status), quoteBody(body), want, c.base)}
}

// badAnswer is the error of a success whose body is not what the call
// expects: the server is not one of ours or the original, so retrying
// cannot help.
func (c *Client) badAnswer(method, path, want string, err error) error {
	return &core.Error{Code: core.ERejected, Err: err,
		Message: fmt.Sprintf("%s at %s: %s %s: the answer is not %s: %v", c.name, c.base, method, path, want, err)}
}

// groupBody returns the body of POST and DELETE /group.
func groupBody(id core.GroupID) []byte {
	b := make([]byte, 0, len(`{"groupId": ""}`)+len(id)+2)
	b = append(b, `{"groupId": `...)
	b = appendJSONString(b, string(id))
	return append(b, '}')
}

// escapeID returns id as one path segment. The dot segments "." and ".."
// are escaped too, so that nothing on the way (a proxy, a URL cleaner)
// resolves them away; every other valid id needs only PathEscape.
func escapeID(id string) string {
	switch id {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(id)
}

// tokenOf reads a record's timestamp: a string, or the number the original
// server may hold; absent or null is no token.
func tokenOf(raw json.RawMessage) (core.Token, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", fmt.Errorf("timestamp %s is neither a string nor a number", raw)
		}
		return core.Token(n), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return core.Token(s), nil
}

// validPort reports whether port, the port of a URL (digits, as url.Parse
// checks), is empty or from 1 to 65535: a dial would refuse any other,
// which must not pass for a server that is down.
func validPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// validHeaderValue reports whether s can be sent as a header value as it
// is: visible ASCII and inner spaces only, as a server would trim the rest.
func validHeaderValue(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// writeTrace records whether the transport began to write a request, over
// every attempt it makes (it retries on a new connection a request that it
// wrote nothing of, or one it may replay, such as a GET). It counts a
// request as written from its first header field on, when the bytes may
// still sit in the transport's buffer: the error leans towards "may have
// been applied", never the other way. Its hooks run on the transport's
// goroutines, hence the atomics.
//
// Its hooks are built once and the record is kept for another request
// (traces) once no hook can fire any more for this one: after the request
// returned, with every connection it got (GotConn) done writing
// (WroteRequest, the last hook of an attempt, deferred in the transport's
// write). An attempt can still be writing when the request returns, such
// as one whose answer came first or whose connection failed under it: then
// the record is left to the garbage collector, so that a late hook never
// marks another request's record. The request's header is kept with it
// (newHeader): once the request has returned, only an attempt still
// writing reads it.
type writeTrace struct {
	wrote atomic.Bool
	conns atomic.Int32 // GotConn calls
	ends  atomic.Int32 // WroteRequest calls
	hooks httptrace.ClientTrace
	// header and vals (the token and fence values) are the request's
	// header, the next request's once this one is released.
	header http.Header
	vals   [2]string
	// reusable is whether release may keep it for another request: its
	// hooks are its own, and it is not kept already.
	reusable bool
}

// traces keeps writeTraces for the next requests.
var traces = sync.Pool{New: func() any { return newWriteTrace() }}

func newWriteTrace() *writeTrace {
	wt := new(writeTrace)
	wt.hooks = httptrace.ClientTrace{
		GotConn:          func(httptrace.GotConnInfo) { wt.conns.Add(1) },
		WroteHeaderField: func(string, []string) { wt.mark() },
		WroteHeaders:     wt.mark,
		WroteRequest: func(httptrace.WroteRequestInfo) {
			wt.mark()
			wt.ends.Add(1)
		},
	}
	return wt
}

// traceWrites returns ctx with a writeTrace's hooks, and the writeTrace,
// which the caller must release once the request returned.
func traceWrites(ctx context.Context) (context.Context, *writeTrace) {
	if httptrace.ContextClientTrace(ctx) != nil {
		// The caller traces too: WithClientTrace chains its hooks into
		// ours, which therefore serve this request only.
		wt := newWriteTrace()
		return httptrace.WithClientTrace(ctx, &wt.hooks), wt
	}
	wt := traces.Get().(*writeTrace)
	wt.reusable = true
	return httptrace.WithClientTrace(ctx, &wt.hooks), wt
}

// newHeader returns wt's header for a request, empty.
func (wt *writeTrace) newHeader() http.Header {
	if wt.header == nil {
		wt.header = make(http.Header, 5)
	}
	clear(wt.header)
	return wt.header
}

func (wt *writeTrace) mark() {
	if !wt.wrote.Load() {
		wt.wrote.Store(true)
	}
}

// release keeps wt for another request if no hook can fire any more for
// this one, which has returned, and reports whether it did; wt must not be
// used after.
func (wt *writeTrace) release() bool {
	if !wt.reusable || wt.conns.Load() != wt.ends.Load() {
		return false
	}
	wt.reusable = false
	wt.wrote.Store(false)
	wt.conns.Store(0)
	wt.ends.Store(0)
	traces.Put(wt)
	return true
}
