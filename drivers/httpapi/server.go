package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// ServerOptions configures a Server. The zero value serves the nodes with
// the defaults.
type ServerOptions struct {
	// Admin serves GET and PUT /admin/faults, which read and change the
	// nodes' faults. Off, the route does not exist.
	Admin bool
	// MaxBody limits request bodies, in bytes (0: DefaultMaxBody).
	MaxBody int64
	// BodyTimeout bounds the time a request's body may take to arrive,
	// from the moment its handler starts (0: DefaultBodyTimeout): a client
	// that announces a body and sends it slowly, or never, gets 408 and
	// its connection is closed, so it cannot hold one for good. Give the
	// http.Server a ReadHeaderTimeout for the headers.
	BodyTimeout time.Duration
	// MaxStats bounds the GET /stats requests that run at once, each of
	// which pages through every node (0: DefaultMaxStats); MaxLists bounds
	// the GET /groups requests that run at once, each holding a page of up
	// to MaxListLimit records (0: DefaultMaxLists). Beyond, a request
	// answers 503 at once with Retry-After, so memory stays bounded
	// however many clients ask.
	MaxStats, MaxLists int
	// AccessLog, if not nil, receives one record per request at level
	// INFO, with gunicorn's fields: the request line as the message, and
	// remote, status, bytes, referer, user_agent and duration (from the
	// request's arrival, by Clock, to the end of its answer),
	//	time=2026-11-25T18:00:00.000Z level=INFO msg="POST /v1/group HTTP/1.1" remote=127.0.0.1 status=201 bytes=8 referer="" user_agent=rops/1 duration=1.532ms
	// The probes, GET or HEAD /ping, /healthz and /readyz, are logged at
	// DEBUG, so that a health check every few seconds does not flood a
	// log at INFO. A slow handler slows the requests.
	AccessLog *slog.Logger
	// Tokens makes the token of a POST that has no timestamp header (nil:
	// a new core.TokenSource).
	Tokens *core.TokenSource
	// Clock times the access log (nil: core.SystemClock).
	Clock core.Clock
	// Original imitates the original Flask server's protocol, so that a
	// Client's fallback path can be tried against real processes: GET
	// /group/<id> answers {"groupId":"<id>"} without the timestamp, GET
	// /groups, GET /ping/ and every unknown route answer Flask's HTML 404, a POST of
	// an id the node holds answers 400 "exists" even with the record's
	// own timestamp (no replay), answers carry no Rops- header (no
	// Rops-Protocol, no Rops-Tombstones, no Rops-Applied on a node's 503),
	// and a request's Rops-Fence is ignored. The stores underneath still
	// keep tombstones; a create they fence answers 500.
	Original bool
	// Metrics serves GET /metrics, the Prometheus text format of the
	// server's own registry: requests by node, handler (path pattern),
	// method, code and injected fault, latency by node, handler and
	// method, and each node's records. The code, method and handler labels
	// are written as client_golang's promhttp middleware writes them.
	Metrics bool
	// AdminToken, if not empty, is the bearer token the admin API wants:
	// a request to it without "Authorization: Bearer <AdminToken>" answers
	// 401. WriteToken is the same for the write routes: POST and DELETE
	// /group and POST /batch. The tokens are compared in constant time,
	// and the access log never holds them.
	AdminToken, WriteToken string
	// HostCheck, if not nil, refuses requests whose Host is not a name of
	// the server, and writes and admin requests from other sites' web
	// pages (see HostCheck). With it or a token, a request with a token
	// in its query (token= or access_token=) answers 400.
	HostCheck *HostCheck
}

// Server is an http.Handler that serves a set of nodes over the original
// system's API; see the package documentation for the routes. It is safe for
// concurrent use.
type Server struct {
	nodes       []core.Node
	bodyTimeout time.Duration
	statsSem    chan struct{} // a slot per GET /stats running
	listSem     chan struct{} // a slot per GET /groups running
	byName      map[string]core.Node
	only        core.Node // the node a request without a node header is for, if the server has one
	names       string    // the node names, for messages
	maxBody     int64
	admin       bool
	tokens      *core.TokenSource
	statsNodes  []core.Node // the nodes as GET /stats reads them (statsNode)
	clock       core.Clock
	log         *accessLog
	adminMu     sync.Mutex // makes a PUT /admin/faults read, merge and set as one
	// tombstones holds the Rops-Tombstones header of each node that
	// keeps tombstones, by name (markFencing).
	tombstones map[string][]string
	removes    map[string]bool // the nodes that serve older_than deletes, by name
	original   bool            // ServerOptions.Original
	metrics    *metrics        // nil without ServerOptions.Metrics
	// The checks of guard: the hashes of ServerOptions.AdminToken and
	// WriteToken (nil: none), and its HostCheck; guarded if any is on.
	adminToken, writeToken *tokenHash
	hosts                  *hostPolicy
	guarded                bool
	workers                *workers // run the chains of batch items
}

var _ http.Handler = (*Server)(nil)

// Close ends the goroutines s keeps between batches, once their work is
// done; call it after the http.Server serving s has shut down. A batch
// served after Close still runs, on goroutines of its own.
func (s *Server) Close() { s.workers.stop() }

// statsRequestTimeout bounds each page a GET /stats reads from a node: the
// caller's context bounds the whole request.
const statsRequestTimeout = time.Minute

// Defaults of ServerOptions.
const (
	// DefaultBodyTimeout is the time a request body may take to arrive.
	DefaultBodyTimeout = 5 * time.Second
	// DefaultMaxStats is how many GET /stats may run at once.
	DefaultMaxStats = 4
	// DefaultMaxLists is how many GET /groups may run at once.
	DefaultMaxLists = 32
)

// busyRetryAfter is the Retry-After of a GET /stats or /groups refused
// because too many run, in seconds.
const busyRetryAfter = "1"

// NewServer returns a Server for nodes, which must be at least one, with
// unique names; it panics otherwise, as that is a programming error.
func NewServer(nodes []core.Node, opts ServerOptions) *Server {
	s := &Server{
		workers: newWorkers(),
		nodes:   nodes,
		byName:  make(map[string]core.Node, len(nodes)),
		maxBody: opts.MaxBody,
		admin:   opts.Admin,
		tokens:  opts.Tokens,
	}
	s.original = opts.Original
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	s.bodyTimeout = cmp.Or(max(opts.BodyTimeout, 0), DefaultBodyTimeout)
	s.statsSem = make(chan struct{}, cmp.Or(max(opts.MaxStats, 0), DefaultMaxStats))
	s.listSem = make(chan struct{}, cmp.Or(max(opts.MaxLists, 0), DefaultMaxLists))
	if s.tokens == nil {
		s.tokens = core.NewTokenSource(opts.Clock)
	}
	names := make([]string, len(nodes))
	if len(nodes) == 0 {
		panic("httpapi.NewServer: no nodes")
	}
	for i, n := range nodes {
		if s.byName[n.Name()] != nil {
			panic(fmt.Sprintf("httpapi.NewServer: node %q appears twice", n.Name()))
		}
		names[i] = n.Name()
		s.byName[n.Name()] = n
	}
	s.names = strings.Join(names, ", ")
	if !s.original {
		s.tombstones = tombstoneHeaders(nodes)
		s.removes = removers(nodes)
	}
	if len(nodes) == 1 {
		s.only = nodes[0]
	}
	// Stats reads each node once, without retries: a node that fails
	// answers the request at once, and GET /stats is retried by its caller.
	// List and Count see no random faults, only Down and latency.
	s.statsNodes = make([]core.Node, len(nodes))
	for i, n := range nodes {
		s.statsNodes[i] = statsNode{n}
	}
	s.clock = opts.Clock
	if opts.AccessLog != nil {
		s.log = newAccessLog(opts.AccessLog, opts.Clock)
	}
	if opts.Metrics {
		s.metrics = newMetrics(nodes)
	}
	s.adminToken, s.writeToken = hashToken(opts.AdminToken), hashToken(opts.WriteToken)
	if opts.HostCheck != nil {
		s.hosts = newHostPolicy(opts.HostCheck)
	}
	s.guarded = s.adminToken != nil || s.writeToken != nil || s.hosts != nil
	return s
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hasBody := r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
	// When the request came, for the metrics, the body's deadline and a
	// log by the system clock.
	var start time.Time
	if s.metrics != nil || hasBody || s.log != nil && s.log.system {
		start = time.Now()
	}
	if hasBody {
		// The deadline covers the body whether a handler reads it or
		// net/http drains it after the answer. net/http sets the
		// connection's next deadline itself before the next request's
		// header when the http.Server has a ReadHeaderTimeout, ReadTimeout
		// or IdleTimeout; without one, this deadline stays and closes the
		// idle connection when it passes. A writer that cannot set one
		// (a test's recorder) reads without.
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(s.bodyTimeout))
	}
	if s.original {
		w = originalWriter{w}
	}
	if s.metrics == nil && s.log == nil {
		s.route(r.Context(), w, r)
		return
	}
	// One writer records the answer for both the metrics and the log, and
	// the context, not a copy of the request, carries the note in which a
	// faulty node records the fault it injected.
	aw := &answerWriter{ResponseWriter: w}
	logStart := start
	if s.log != nil && !s.log.system {
		logStart = s.log.clock.Now() // a clock that tests fix
	}
	ctx := r.Context()
	if s.metrics != nil {
		aw.ctx.Context = ctx
		ctx = &aw.ctx
		// Deferred, to count a request whose handler aborts (a reset
		// connection that cannot be taken over) as well.
		defer s.metrics.count(s, r, start, aw)
	}
	s.route(ctx, aw, r)
	if s.log != nil {
		aw.end = s.log.write(ctx, r, logStart, aw)
	}
}

// answerWriter records what the metrics and the access log need of an
// answer: its status and body size, and whether the connection was reset
// instead; and it holds the request's context with its faults.Note (one
// allocation for all).
type answerWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	reset  bool               // the connection was reset with no answer (resetConnection)
	ctx    faults.NoteContext // with ServerOptions.Metrics, the context the handlers get
	items  int                // the items of a batch (POST /batch), for the access log
	// end is when the answer ended, if the access log read it from the
	// system clock, for the metrics to read no clock again.
	end time.Time
}

// WriteHeader records the first status and passes it on.
func (w *answerWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write counts the body's bytes; a body without a status is a 200.
func (w *answerWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// WriteString writes s as Write does, without copying it into a []byte
// where the writer underneath takes strings (net/http's does).
func (w *answerWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.WriteString(w.ResponseWriter, s)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *answerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Methods, as the Allow header lists them.
const (
	allowGet   = "GET, HEAD"
	allowGroup = "POST, DELETE"
	allowAdmin = "GET, PUT"
)

// route dispatches on the escaped path, so that the id of GET /group/<id> is
// taken as sent: ServeMux would clean "." and ".." away, and an escaped '/'
// must reach the id check rather than split the path. ctx is r's context,
// with the note of ServerOptions.Metrics if on.
func (s *Server) route(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	if !s.original {
		// On every answer, so that a Client can tell a rops node's word
		// from a proxy's page (noteCapabilities).
		w.Header()[headerProtocol] = protocolOn
		w.Header()[headerBatch] = batchOn
	}
	s.markFencing(w, r)
	p := routePath(r)
	if s.guarded && !s.guard(w, r, p) {
		return
	}
	switch p {
	case "/healthz":
		handleHealthz(w, r)
	case "/readyz":
		s.handleReadyz(ctx, w, r)
	case "/metrics":
		if s.metrics == nil {
			s.notFound(w, r)
		} else if allowed(w, r, allowGet) {
			s.metrics.handler.ServeHTTP(w, r)
		}
	case "/ping", "/ping/":
		if s.original && p == "/ping/" {
			// Flask's route /ping has no trailing slash.
			s.notFound(w, r)
		} else if allowed(w, r, allowGet) {
			writeText(w, http.StatusOK, "PONG\n")
		}
	case "/stats":
		if allowed(w, r, allowGet) && s.acquire(w, s.statsSem, "GET /stats") {
			defer s.release(s.statsSem)
			s.handleStats(ctx, w)
		}
	case "/group":
		switch r.Method {
		case http.MethodPost:
			s.handleCreate(ctx, w, r)
		case http.MethodDelete:
			s.handleDelete(ctx, w, r)
		default:
			methodNotAllowed(w, r, allowGroup)
		}
	case "/batch":
		if s.original {
			s.notFound(w, r)
		} else if r.Method != http.MethodPost {
			methodNotAllowed(w, r, http.MethodPost)
		} else {
			s.handleBatch(ctx, w, r)
		}
	case "/groups":
		if s.original {
			s.notFound(w, r)
		} else if allowed(w, r, allowGet) && s.acquire(w, s.listSem, "GET /groups") {
			defer s.release(s.listSem)
			s.handleList(ctx, w, r)
		}
	case "/admin/faults":
		if !s.admin {
			s.notFound(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			s.handleGetFaults(w)
		case http.MethodPut:
			s.handlePutFaults(w, r)
		default:
			methodNotAllowed(w, r, allowAdmin)
		}
	default:
		id, ok := strings.CutPrefix(p, "/group/")
		if !ok {
			s.notFound(w, r)
			return
		}
		if allowed(w, r, allowGet) {
			s.handleGet(ctx, w, r, id)
		}
	}
}

// routePath returns r's escaped path without its /v1 prefix, as route
// dispatches on it.
func routePath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if rest, ok := strings.CutPrefix(p, "/v1"); ok && strings.HasPrefix(rest, "/") {
		return rest
	}
	return p
}

// acquire takes a slot of sem for a request of what, or answers 503 with
// Retry-After if every slot is taken, and reports whether it took one.
func (s *Server) acquire(w http.ResponseWriter, sem chan struct{}, what string) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	w.Header()["Retry-After"] = []string{busyRetryAfter}
	writeError(w, http.StatusServiceUnavailable,
		fmt.Sprintf("busy: %d %s requests are running, the most this server runs at once; retry in %s s", cap(sem), what, busyRetryAfter))
	return false
}

func (s *Server) release(sem chan struct{}) { <-sem }

// allowed reports whether r's method is among allow, a list of GET and HEAD;
// if not, it answers 405.
func allowed(w http.ResponseWriter, r *http.Request, allow string) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	methodNotAllowed(w, r, allow)
	return false
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header()["Allow"] = []string{allow}
	writeError(w, http.StatusMethodNotAllowed,
		fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.EscapedPath(), allow))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if s.original {
		w.Header()["Content-Type"] = contentHTML
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, flaskNotFound)
		return
	}
	routes := "/ping, /stats, /group, /group/<id>, /groups, /batch, /healthz, /readyz"
	if s.metrics != nil {
		routes += ", /metrics"
	}
	if s.admin {
		routes += ", /admin/faults"
	}
	writeError(w, http.StatusNotFound,
		fmt.Sprintf("no route %s: the routes are %s, at the root or under /v1", r.URL.EscapedPath(), routes))
}

// node returns the node that a request's node header (its values, v)
// names, or the server's only node if it has one and the header is
// missing; else it answers 406. The header map is indexed by the callers,
// not read by Header.Get, which would canonicalize the key again on every
// request.
func (s *Server) node(w http.ResponseWriter, v []string) (core.Node, bool) {
	if len(v) > 1 {
		writeError(w, http.StatusNotAcceptable, fmt.Sprintf("the 'node' header is given %d times: name one node", len(v)))
		return nil, false
	}
	if len(v) == 0 || v[0] == "" {
		if s.only != nil {
			return s.only, true
		}
		writeError(w, http.StatusNotAcceptable, "missing 'node' header: name one of "+s.names)
		return nil, false
	}
	if n, ok := s.byName[v[0]]; ok {
		return n, true
	}
	writeError(w, http.StatusNotAcceptable, fmt.Sprintf("unknown node %q in the 'node' header: name one of %s", v[0], s.names))
	return nil, false
}

// token returns the timestamp header whose values are v, or answers 406 if it is too long or
// not a finite non-negative decimal number, such as the original's clients
// send (seconds.micros, 1633786070.879454): a token is compared and stored
// as it is, and "nan" or "-1" would name no moment.
func token(w http.ResponseWriter, v []string) (core.Token, bool) {
	if len(v) == 0 {
		return "", true
	}
	if len(v) > 1 {
		writeError(w, http.StatusNotAcceptable, fmt.Sprintf("the timestamp header is given %d times: give it once", len(v)))
		return "", false
	}
	if len(v[0]) > MaxTokenLen {
		writeError(w, http.StatusNotAcceptable,
			fmt.Sprintf("the timestamp header is %d bytes long: the limit is %d", len(v[0]), MaxTokenLen))
		return "", false
	}
	if v[0] != "" && !isDecimal(v[0]) {
		writeError(w, http.StatusNotAcceptable,
			fmt.Sprintf("invalid timestamp header %s: give a non-negative decimal number of seconds, such as 1633786070.879454", quoteClipped(v[0], 40)))
		return "", false
	}
	return core.Token(v[0]), true
}

// fence returns the context of a request for its node: ctx, the request's,
// carrying the fence of its Rops-Fence header (values v) if any
// (core.WithFence). It answers 400 if the
// header is repeated, too long or not a timestamp as the timestamp
// header's: a fence is compared with the fences the node holds, and one
// that named no moment would sort below them all. The original ignores the
// header, and so does its imitation.
func (s *Server) fence(ctx context.Context, w http.ResponseWriter, v []string) (context.Context, bool) {
	if len(v) == 0 || s.original {
		return ctx, true
	}
	switch {
	case len(v) > 1:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the Rops-Fence header is given %d times: give it once", len(v)))
	case len(v[0]) > MaxTokenLen:
		writeError(w, http.StatusBadRequest,
			fmt.Sprintf("the Rops-Fence header is %d bytes long: the limit is %d", len(v[0]), MaxTokenLen))
	case v[0] != "" && !isDecimal(v[0]):
		writeError(w, http.StatusBadRequest,
			fmt.Sprintf("invalid Rops-Fence header %s: give the token of the operation holding the id, a non-negative decimal number of seconds such as 1633786070.879454", quoteClipped(v[0], 40)))
	default:
		return core.WithFence(ctx, core.Token(v[0])), true
	}
	return nil, false
}

// isDecimal reports whether s is digits, with a fraction after a '.' if any:
// no sign, exponent, NaN or infinity.
func isDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	return allDigits(whole) && (!dot || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// groupCall is a POST or DELETE /group as its handlers read it: the
// values of its node, timestamp and Rops-Fence headers and of its
// older_than query, and its body. A request gives them (requestCall), and
// so does a batch item, without building a request (batchItem).
type groupCall struct {
	node, timestamp, fence []string
	// query: the request has a query; olderThan: the values of older_than
	// in it, and given whether it has one.
	query, given bool
	olderThan    []string
	// The body: read from req if not nil, else body.
	req  *http.Request
	body []byte
}

// requestCall returns the groupCall that r is.
func requestCall(r *http.Request) groupCall {
	c := groupCall{node: r.Header[headerNode], timestamp: r.Header[headerTimestamp], fence: r.Header[headerFence], req: r}
	if r.URL.RawQuery != "" {
		c.query = true
		c.olderThan, c.given = r.URL.Query()[queryOlderThan]
	}
	return c
}

// groupRequest reads what POST and DELETE /group need: the node, the id in
// the body, the token in the header and the context that carries the
// fence (Server.fence), answering the request if any is wrong.
func (s *Server) groupRequest(ctx context.Context, w http.ResponseWriter, c *groupCall) (context.Context, core.Node, core.GroupID, core.Token, bool) {
	n, ok := s.node(w, c.node)
	if !ok {
		return nil, nil, "", "", false
	}
	tok, ok := token(w, c.timestamp)
	if !ok {
		return nil, nil, "", "", false
	}
	ctx, ok = s.fence(ctx, w, c.fence)
	if !ok {
		return nil, nil, "", "", false
	}
	body := c.body
	if c.req != nil {
		buf, herr := readBody(c.req, s.maxBody)
		if herr != nil {
			writeHTTPError(w, herr)
			return nil, nil, "", "", false
		}
		defer buf.release()
		body = buf.Bytes()
	}
	id, herr := decodeGroupRequest(body)
	if herr != nil {
		writeHTTPError(w, herr)
		return nil, nil, "", "", false
	}
	return ctx, n, id, tok, true
}

func (s *Server) handleCreate(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	c := requestCall(r)
	s.create(ctx, w, &c)
}

// create answers a POST /group.
func (s *Server) create(ctx context.Context, w http.ResponseWriter, c *groupCall) {
	ctx, n, id, tok, ok := s.groupRequest(ctx, w, c)
	if !ok {
		return
	}
	if tok == "" {
		tok = s.tokens.Next()
	}
	held := s.original && holds(ctx, n, id)
	err := n.Create(ctx, id, tok)
	switch {
	case err == nil && held:
		// The original has no replay: it finds the id and refuses.
		writeError(w, http.StatusBadRequest, msgExists)
	case s.original && core.ErrorCode(err) == core.EFenced:
		// The original has no tombstones and no 409.
		writeError(w, http.StatusInternalServerError, "Internal Server Error")
	case err != nil:
		groupError(w, n, err, id, tok)
	default:
		writeText(w, http.StatusCreated, "CREATED\n")
	}
}

func (s *Server) handleDelete(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	c := requestCall(r)
	s.delete(ctx, w, &c)
}

// delete answers a DELETE /group, with older_than or not.
func (s *Server) delete(ctx context.Context, w http.ResponseWriter, c *groupCall) {
	ctx, n, id, tok, ok := s.groupRequest(ctx, w, c)
	if !ok {
		return
	}
	if c.query && !s.original {
		// The original ignores the query, and so does its imitation.
		if before, given := olderThan(w, c.olderThan, c.given, tok); given {
			if before != "" {
				s.remove(ctx, w, n, id, before)
			}
			return
		}
	}
	if err := n.Delete(ctx, id, tok); err != nil {
		groupError(w, n, err, id, tok)
		return
	}
	writeText(w, http.StatusOK, "OK\n")
}

// olderThan returns the older_than query value, of the values v if given;
// a given one is "" if it is invalid, or comes with a timestamp header,
// and then olderThan has answered 406.
func olderThan(w http.ResponseWriter, v []string, given bool, tok core.Token) (core.Token, bool) {
	switch {
	case !given:
		return "", false
	case len(v) != 1:
		writeError(w, http.StatusNotAcceptable, fmt.Sprintf("older_than is given %d times: give it once", len(v)))
	case tok != "":
		writeError(w, http.StatusNotAcceptable, "give either older_than or a timestamp header, not both")
	case len(v[0]) > MaxTokenLen:
		writeError(w, http.StatusNotAcceptable, fmt.Sprintf("older_than is %d bytes long: the limit is %d", len(v[0]), MaxTokenLen))
	case !isDecimal(v[0]):
		writeError(w, http.StatusNotAcceptable,
			fmt.Sprintf("invalid older_than %s: give a non-negative decimal number of seconds, such as 1633786070.879454", quoteClipped(v[0], 40)))
	default:
		return core.Token(v[0]), true
	}
	return "", true
}

// remove answers DELETE /group?older_than=before: 200 with the removed
// record's timestamp in Rops-Removed, 404 as a DELETE that finds nothing,
// 409 msgNewer with the record's timestamp in Rops-Held, or 501 from a node
// that does not serve it.
func (s *Server) remove(ctx context.Context, w http.ResponseWriter, n core.Node, id core.GroupID, before core.Token) {
	rm, ok := n.(core.Remover)
	if !ok || !s.removes[n.Name()] {
		writeError(w, http.StatusNotImplemented,
			fmt.Sprintf("%s keeps no tombstones: it cannot delete older_than; send a timestamp header instead", n.Name()))
		return
	}
	tok, err := rm.Remove(ctx, id, before)
	switch {
	case err == nil:
		w.Header()[headerRemoved] = []string{string(tok)}
		writeText(w, http.StatusOK, "OK\n")
	case core.ErrorCode(err) == core.EExists:
		w.Header()[headerHeld] = []string{string(tok)}
		writeError(w, http.StatusConflict, msgNewer)
	default:
		groupError(w, n, err, id, "")
	}
}

// handleGet answers GET /group/<id>; escaped is the id as the path holds it.
func (s *Server) handleGet(ctx context.Context, w http.ResponseWriter, r *http.Request, escaped string) {
	n, ok := s.node(w, r.Header[headerNode])
	if !ok {
		return
	}
	ctx, ok = s.fence(ctx, w, r.Header[headerFence])
	if !ok {
		return
	}
	raw, err := url.PathUnescape(escaped)
	if err != nil {
		writeError(w, http.StatusNotAcceptable, fmt.Sprintf("invalid group id %q in the path: %v", escaped, err))
		return
	}
	id, herr := parseID(raw)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	rec, err := n.Get(ctx, id)
	if err != nil {
		groupError(w, n, err, id, "")
		return
	}
	b := make([]byte, 0, 40+len(rec.ID)+len(rec.Token))
	if s.original {
		// Flask's jsonify of the original's record, which has no token.
		b = appendJSONString(append(b, `{"groupId":`...), string(rec.ID))
		writeJSON(w, http.StatusOK, append(b, "}\n"...))
		return
	}
	writeJSON(w, http.StatusOK, append(appendRecord(b, string(rec.ID), string(rec.Token)), '\n'))
}

// handleStats answers GET /stats as the original's job printed it: whether
// every node holds the same ids, and each node's count. The ids are
// compared page by page (core.Coordinator.Stats), so memory stays flat.
func (s *Server) handleStats(ctx context.Context, w http.ResponseWriter) {
	st, err := core.Compare(ctx, s.statsNodes, core.CompareOptions{
		StatsOptions:   core.StatsOptions{MaxDivergent: -1},
		RequestTimeout: statsRequestTimeout,
		Clock:          s.clock,
	})
	if err != nil {
		// The stats' own message names the node that failed; a node that
		// is down says so as on every route.
		status, _ := errorStatus(err)
		msg := err.Error()
		if e, ok := errors.AsType[*core.Error](err); ok && status == http.StatusServiceUnavailable && markNotApplied(w, err) {
			msg = e.Message
		}
		writeError(w, status, msg)
		return
	}
	b := make([]byte, 0, 16+len(st.Nodes)*24)
	b = append(b, '[')
	b = strconv.AppendBool(b, st.Consistent)
	b = append(b, ", {"...)
	for i, c := range st.Nodes {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendJSONString(b, c.Node)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, int64(c.Count), 10)
	}
	writeJSON(w, http.StatusOK, append(b, "}]\n"...))
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header()["Content-Type"] = contentText
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = contentJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// statsNode is a node as GET /stats reads it: one that is down says only
// that, as it does on the other routes, rather than what the node's error
// says.
type statsNode struct{ core.Node }

func (n statsNode) List(ctx context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	recs, err := n.Node.List(ctx, after, limit)
	return recs, n.down(err)
}

func (n statsNode) Count(ctx context.Context) (int, error) {
	c, err := n.Node.Count(ctx)
	return c, n.down(err)
}

func (n statsNode) down(err error) error {
	if core.ErrorCode(err) != core.EUnavailable {
		return err
	}
	return &core.Error{Code: core.EUnavailable, Message: n.Name() + " is down", Err: err}
}

// flaskNotFound is the page Flask (werkzeug 2.0) answers an unknown route
// with, as the original server did.
const flaskNotFound = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<title>404 Not Found</title>
<h1>Not Found</h1>
<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>
`

var contentHTML = []string{"text/html; charset=utf-8"}

// originalWriter drops the Rops- headers from an answer, as the original
// server sends none: a Client then takes no 503 for "not applied", assumes
// no tombstones and sees no protocol version. ServerOptions.Original.
type originalWriter struct{ http.ResponseWriter }

func (w originalWriter) WriteHeader(status int) {
	w.strip()
	w.ResponseWriter.WriteHeader(status)
}

func (w originalWriter) Write(b []byte) (int, error) {
	w.strip()
	return w.ResponseWriter.Write(b)
}

func (w originalWriter) strip() {
	h := w.Header()
	for _, k := range [...]string{headerApplied, headerTombstones, headerRemoves, headerProtocol, headerFence, headerBatch} {
		delete(h, k)
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w originalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// holds reports whether n holds id, for the original's "exists" check. It
// reads with List, which no fault but down and delay touches, so that the
// check draws no fault of its own: List returns the ids after a bound, and
// no valid id lies between id (its last byte one lower, then 0xff) and
// id, as ids are UTF-8, which has no byte 0xff (and no byte 0, which
// Validate refuses). Like the original's, the check and the create are not
// one atomic step.
func holds(ctx context.Context, n core.Node, id core.GroupID) bool {
	s := string(id)
	if s == "" {
		return false
	}
	after := core.GroupID(s[:len(s)-1] + string([]byte{s[len(s)-1] - 1, 0xff}))
	page, err := n.List(ctx, after, 1)
	return err == nil && len(page) == 1 && page[0].ID == id
}
