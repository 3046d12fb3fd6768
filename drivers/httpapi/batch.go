package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// Batches: POST /batch carries many group requests for one server in one
// HTTP request, and answers one result per item. docs/protocol.md describes
// the body and the result.
const (
	// headerBatch is on every answer of a Server that serves POST /batch,
	// with the most items a batch may hold (canonical form). The original
	// server never sends it.
	headerBatch = "Rops-Batch"
	// MaxBatchItems is the most items POST /batch accepts.
	MaxBatchItems = 256
	// MaxBatchBody limits a POST /batch body, in bytes: MaxBatchItems
	// items of long ids, tokens and fences fit.
	MaxBatchBody = 1 << 20
	// MaxBatchWait is the longest wait a POST /batch body may give: a
	// longer one is a typing mistake (10m for 10s).
	MaxBatchWait = 10 * time.Minute
)

var batchOn = []string{strconv.Itoa(MaxBatchItems)} // the value of headerBatch

// batchItem is one item of a POST /batch body: a group request as the
// single routes take it, its headers and query as fields.
type batchItem struct {
	Op        string          `json:"op"` // create, delete or remove
	Node      string          `json:"node"`
	GroupID   json.RawMessage `json:"groupId"`
	Timestamp string          `json:"timestamp"`
	OlderThan string          `json:"older_than"`
	Fence     string          `json:"fence"`
}

// batchResult is the answer of one item: the status, the headers of the
// single request's answer that belong to it (Rops-Removed, Rops-Held,
// Rops-Fence, Rops-Applied, Retry-After) and its body as text. Status 0
// says the single request's connection would have been reset: no answer.
type batchResult struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
}

// itemHeaders are the headers of a single answer that a batch result
// carries; the others are on every answer, the batch's included.
var itemHeaders = []string{headerRemoved, headerHeld, headerFence, headerApplied, "Retry-After"}

// decodeBatch reads a POST /batch body: its items and its wait (0 if none),
// or returns a 400 error saying what is wrong with it.
func decodeBatch(body []byte) ([]batchItem, time.Duration, *httpError) {
	const example = `{"items": [{"op": "create", "node": "node01", "groupId": "5", "timestamp": "1633786070.879454"}], "wait": "1.5s"}`
	var b struct {
		Items []batchItem `json:"items"`
		Wait  string      `json:"wait"`
	}
	var plain bool
	if b.Items, b.Wait, plain = scanBatch(body); !plain {
		b.Items, b.Wait = nil, ""
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(&b); err != nil {
			return nil, 0, reject(http.StatusBadRequest, "the body must be a JSON object such as "+example+": "+jsonProblem(err))
		}
		if d.More() {
			return nil, 0, reject(http.StatusBadRequest, "the body holds more than one JSON value: send one object such as "+example)
		}
	}
	switch {
	case len(b.Items) == 0:
		return nil, 0, reject(http.StatusBadRequest, "no items: send a JSON object such as "+example)
	case len(b.Items) > MaxBatchItems:
		return nil, 0, reject(http.StatusBadRequest, fmt.Sprintf("%d items: a batch holds at most %d", len(b.Items), MaxBatchItems))
	}
	var wait time.Duration
	if b.Wait != "" {
		var err error
		wait, err = time.ParseDuration(b.Wait)
		if err != nil || wait < 0 || wait > MaxBatchWait {
			return nil, 0, reject(http.StatusBadRequest, fmt.Sprintf(`wait %s: give a duration from 0s (no limit) to %v, such as "1.5s"`, quoteClipped(b.Wait, 40), MaxBatchWait))
		}
	}
	for i, it := range b.Items {
		var problem string
		switch {
		case it.Op != "create" && it.Op != "delete" && it.Op != "remove":
			problem = fmt.Sprintf("op %s: give create, delete or remove", quoteClipped(it.Op, 40))
		case len(it.GroupID) == 0:
			problem = "no groupId"
		case it.Op == "remove" && it.OlderThan == "":
			problem = "a remove needs older_than"
		case it.Op != "remove" && it.OlderThan != "":
			problem = "older_than is only for a remove"
		case it.Op == "remove" && it.Timestamp != "":
			problem = "give a remove older_than, not a timestamp"
		case !validItemValue(it.Node), !validItemValue(it.Timestamp), !validItemValue(it.Fence), !validItemValue(it.OlderThan):
			problem = "a node, timestamp, older_than or fence holds a character a header cannot"
		}
		if problem != "" {
			return nil, 0, reject(http.StatusBadRequest, fmt.Sprintf("item %d: %s", i, problem))
		}
	}
	return b.Items, wait, nil
}

// validItemValue reports whether s is empty or could travel in a header.
func validItemValue(s string) bool { return s == "" || validHeaderValue(s) }

// handleBatch answers POST /batch: 200 with one result per item, in order,
// each the answer the item's single request would have had. Each item goes
// through the single route's handler, so that node lookup, checks, fences,
// faults and the mapping of errors are the same; the items run as
// concurrent requests would (runBatch). The faults of the first item's node
// may then lose, delay or repeat the whole batch (faults.Node.BatchFault).
func (s *Server) handleBatch(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	buf, herr := readBody(r, MaxBatchBody)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	items, wait, herr := decodeBatch(buf.Bytes())
	buf.release()
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	if aw, ok := w.(*answerWriter); ok {
		aw.items = len(items)
	}
	// What the items need of the request, kept apart so that a batch run
	// again in the background does not read a request that has ended.
	o := batchOrigin{node: r.Header[headerNode]}
	fn := s.batchNode(o, &items[0])
	bf := faults.BatchNone
	if fn != nil {
		bf = fn.BatchFault(ctx)
	}
	again := func(items []batchItem) func(context.Context) {
		return func(ctx context.Context) {
			// Nobody waits for this run: a hung item gives up after
			// the batch's wait, or a single request's timeout.
			_, _ = s.runBatch(ctx, o, items, cmp.Or(wait, core.DefaultRequestTimeout))
		}
	}
	switch bf {
	case faults.BatchLostBefore:
		resetConnection(w)
		return
	case faults.BatchLate:
		fn.Later(again(items))
		<-ctx.Done()
		return
	}
	results, last := s.runBatch(ctx, o, items, wait)
	if aw, ok := w.(*answerWriter); ok && aw.ctx.Note.Fault == "" {
		// The batch is counted under its items' last fault, as it was
		// when they ran in turn and noted into the batch's note.
		aw.ctx.Note.Fault = last
	}
	switch bf {
	case faults.BatchLostAfter:
		resetConnection(w)
		return
	case faults.BatchDuplicate:
		fn.Later(again(notRefused(items, results)))
	}
	writeJSON(w, http.StatusOK, appendResults(make([]byte, 0, 64*len(results)), results))
}

// appendResults appends the answer of a batch whose items answered
// results to b: {"results": [...]} and a newline, written out (encoding/json's
// reflection was 5% of a server's CPU per item), headers in itemHeaders'
// order.
func appendResults(b []byte, results []batchResult) []byte {
	b = append(b, `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(append(b, `{"status":`...), int64(r.Status), 10)
		if r.Headers != nil {
			b = append(b, `,"headers":{`...)
			n := 0
			for _, k := range itemHeaders {
				v, ok := r.Headers[k]
				if !ok {
					continue
				}
				if n > 0 {
					b = append(b, ',')
				}
				n++
				b = appendJSONString(append(appendJSONString(b, k), ':'), v)
			}
			b = append(b, '}')
		}
		b = append(appendJSONString(append(b, `,"body":`...), r.Body), '}')
	}
	return append(b, "]}\n"...)
}

// notRefused returns the items whose results are not the node's word that
// they were not applied (Rops-Applied: false, as a node out of tombstone
// room answers): the copy of a duplicated batch carries only those. A copy
// of a write the node refused, landing later, would break the one promise
// a client trusts without fencing (README, "Only an answer is certain").
func notRefused(items []batchItem, results []batchResult) []batchItem {
	var keep []batchItem
	for i, it := range items {
		if results[i].Headers[headerApplied] != "false" {
			keep = append(keep, it)
		}
	}
	return keep
}

// batchOrigin is what the items of a batch take from its request: the
// node header.
type batchOrigin struct {
	node []string
}

// itemNode returns the node name the item's request gives, "" if none.
func (o batchOrigin) itemNode(it *batchItem) string {
	if it.Node != "" {
		return it.Node
	}
	if len(o.node) == 1 {
		return o.node[0]
	}
	return ""
}

// batchNode returns the faulty node whose batch faults a batch meets: that
// of its first item (a client sends one node per batch), or nil if it has
// none, or names no node served here.
func (s *Server) batchNode(o batchOrigin, first *batchItem) *faults.Node {
	var n core.Node
	if name := o.itemNode(first); name != "" {
		n = s.byName[name]
	} else if len(o.node) == 0 {
		n = s.only
	}
	if n == nil {
		return nil
	}
	fn, _ := faults.Faulty(n)
	return fn
}

// runBatch runs items as concurrent requests would, and returns their
// results in order, and the last fault (in item order) that a faulty node
// noted of an item that answered. The items of one group on one node run in
// item order, one after the other, as a client that waits for each answer
// sends them, so that fences, tombstones and seeded faults hold in that
// order; the others do not wait for each other. If wait is not zero, each
// item runs under a context that ends after wait, and runBatch returns by
// then: an item still running, or whose handler returned after its context
// ended, gets status 0, no answer, though it may be applied yet.
func (s *Server) runBatch(ctx context.Context, o batchOrigin, items []batchItem, wait time.Duration) ([]batchResult, string) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	// Buffered, so that an item that answers after runBatch returned
	// does not block.
	answers := make(chan batchAnswer, len(items))
	chains := groupChains(o, items)
	runs := make([]chainRun, len(chains))
	for k, chain := range chains {
		runs[k] = chainRun{s: s, ctx: ctx, o: o, items: items, chain: chain, answers: answers}
		s.workers.run(&runs[k])
	}
	results := make([]batchResult, len(items))
	faultOf := make([]string, len(items))
	start := time.Now()
	var cut <-chan time.Time
	for n := 1; n <= len(items); n++ {
		select {
		case a := <-answers:
			results[a.i], faultOf[a.i] = a.res, a.fault
			if cut == nil && n < len(items) && 2*n >= len(items) {
				t := time.NewTimer(straggle(time.Since(start)))
				defer t.Stop()
				cut = t.C
			}
		case <-cut:
			// Stragglers (a hung item, a late one) keep status 0, as
			// their own requests would have no answer yet: the others'
			// answers do not wait for them.
			return results, lastFault(faultOf)
		case <-ctx.Done():
			// The items not yet answered keep status 0.
			return results, lastFault(faultOf)
		}
	}
	return results, lastFault(faultOf)
}

// groupChains returns the indexes of items in chains, one per group (node
// and id), each in item order. The indexes are sorted by group, stably: a
// map from group to chain cost two allocations per item.
func groupChains(o batchOrigin, items []batchItem) [][]int {
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	byGroup := func(a, b int) int {
		if c := strings.Compare(o.itemNode(&items[a]), o.itemNode(&items[b])); c != 0 {
			return c
		}
		return bytes.Compare(items[a].GroupID, items[b].GroupID)
	}
	slices.SortStableFunc(idx, byGroup)
	var chains [][]int
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && byGroup(idx[start], idx[end]) == 0 {
			end++
		}
		chains = append(chains, idx[start:end:end])
		start = end
	}
	return chains
}

// batchAnswer is the answer of item i of a batch, and the fault a faulty
// node noted of it.
type batchAnswer struct {
	i     int
	res   batchResult
	fault string
}

// chainRun runs the items of one chain in turn, answering each on answers.
type chainRun struct {
	s       *Server
	ctx     context.Context
	o       batchOrigin
	items   []batchItem
	chain   []int
	answers chan<- batchAnswer
}

func (c *chainRun) run() {
	for _, i := range c.chain {
		if c.ctx.Err() != nil {
			// Not started, so never applied: its result stays status 0,
			// as its client would see it.
			return
		}
		var note faults.Note
		res := c.s.batchItem(faults.WithNote(c.ctx, &note), c.o, &c.items[i])
		if c.ctx.Err() != nil {
			// Its caller has stopped waiting: the answer would not have
			// reached it.
			res = batchResult{}
		}
		c.answers <- batchAnswer{i, res, note.Fault}
	}
}

// minStraggle is the least a batch waits for its last items once half of
// them have answered (see straggle).
const minStraggle = 50 * time.Millisecond

// straggle is how long a batch waits for its last items once half of them
// have answered, took after it began: twice that, and at least
// minStraggle. Items of one node answer in about the same time; one that
// takes far longer hangs or waits in a queue, and would otherwise hold
// every other item's answer until the batch's wait.
func straggle(took time.Duration) time.Duration { return max(minStraggle, 2*took) }

// lastFault returns the last fault named in names, "" if none.
func lastFault(names []string) string {
	for i := len(names) - 1; i >= 0; i-- {
		if names[i] != "" {
			return names[i]
		}
	}
	return ""
}

// batchItem answers one item as its single request would be answered: it
// goes to the single route's handler as the groupCall that request would
// be, without building the request (a request, its header map and its
// body were a fifth of a batch item's allocations).
func (s *Server) batchItem(ctx context.Context, o batchOrigin, it *batchItem) batchResult {
	c := groupCall{node: o.node}
	if it.Node != "" {
		c.node = []string{it.Node}
	}
	if it.Timestamp != "" {
		c.timestamp = []string{it.Timestamp}
	}
	if it.Fence != "" {
		c.fence = []string{it.Fence}
	}
	c.body = append(append(append(make([]byte, 0, len(it.GroupID)+13), `{"groupId": `...), it.GroupID...), '}')
	iw := &itemWriter{header: make(http.Header, 2)}
	switch it.Op {
	case "create":
		s.create(ctx, iw, &c)
	default:
		if it.OlderThan != "" {
			c.query, c.given, c.olderThan = true, true, []string{it.OlderThan}
		}
		s.delete(ctx, iw, &c)
	}
	if iw.reset {
		return batchResult{}
	}
	res := batchResult{Status: iw.status, Body: iw.body.String()}
	for _, k := range itemHeaders {
		if v := iw.header[k]; len(v) > 0 {
			if res.Headers == nil {
				res.Headers = make(map[string]string, 1)
			}
			res.Headers[k] = v[0]
		}
	}
	if ct := iw.header["Content-Type"]; len(ct) > 0 && strings.HasPrefix(ct[0], "text/html") {
		// A proxy's page (writeGateway): it carries no rops header.
		res.Headers = nil
	}
	return res
}

// itemWriter records the answer of one batch item.
type itemWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	reset  bool // resetConnection: no answer
}

func (w *itemWriter) Header() http.Header { return w.header }

func (w *itemWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *itemWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
