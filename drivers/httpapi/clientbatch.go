package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core"
)

// DefaultMaxBatch is the most items a Client puts in one batch when
// ClientOptions.MaxBatch is 0.
const DefaultMaxBatch = 128

// ClientStats counts what a Client sent.
type ClientStats struct {
	// Items is the group calls made (Create, Delete, Remove, Get), each
	// one request of the original protocol, alone or in a batch.
	Items int64
	// RoundTrips is the HTTP requests sent, whatever their route.
	RoundTrips int64
	// Batches is the POST /batch requests among RoundTrips.
	Batches int64
}

type clientStats struct{ items, roundTrips, batches atomic.Int64 }

// Stats returns what c sent so far. It is safe for concurrent use.
func (c *Client) Stats() ClientStats {
	return ClientStats{Items: c.stats.items.Load(), RoundTrips: c.stats.roundTrips.Load(), Batches: c.stats.batches.Load()}
}

// batching reports whether c sends group writes in batches: the node said
// it serves them, and the options allow them.
func (c *Client) batching() bool { return c.batch && c.caps.Load().batch > 1 }

// BatchSize returns the most group writes c puts in one batch now, 0 while
// they go one request each: batches are off, or the node has not answered
// yet, or it does not serve them (core.Batcher).
func (c *Client) BatchSize() int {
	if !c.batching() {
		return 0
	}
	return c.batchLimit()
}

// call is one Create, Delete or Remove waiting for its batch.
type call struct {
	o      op // opCreate or opDelete
	remove bool
	id     core.GroupID
	token  core.Token // the timestamp, or older_than for a remove
	fence  core.Token
	// deadline is the caller's, zero for none.
	deadline time.Time
	removed  core.Token
	err      error
}

// batchLimit is the most calls the next batch may hold: a node that
// stopped serving batches gets the calls waiting one by one.
func (c *Client) batchLimit() int { return min(c.maxBatch, max(c.caps.Load().batch, 1)) }

// batched sends cl in a batch and returns its outcome. A caller whose ctx
// ends first returns at once: EUnavailable (not sent) if its call was not
// yet in a batch on the way, else ETransient as a single request with no
// answer.
func (c *Client) batched(ctx context.Context, cl *call) (core.Token, error) {
	if err := ctx.Err(); err != nil {
		return "", c.transportError(ctx, cl.method(), cl.path(), err, false)
	}
	cl.fence = core.FenceOf(ctx)
	cl.deadline, _ = ctx.Deadline()
	if onTheWay, err := c.batches.Do(ctx, cl); err != nil {
		return "", c.transportError(ctx, cl.method(), cl.path(), err, onTheWay)
	}
	return cl.removed, cl.err
}

func (cl *call) method() string {
	if cl.o == opCreate {
		return http.MethodPost
	}
	return http.MethodDelete
}

func (cl *call) path() string {
	if cl.remove {
		return removePath(cl.token)
	}
	return "/group"
}

// batchContext returns the context of a batch of calls: it ends at the
// latest of their deadlines, or never if one has none.
func batchContext(calls []*call) (context.Context, context.CancelFunc) {
	var last time.Time
	for _, cl := range calls {
		if cl.deadline.IsZero() {
			return context.WithCancel(context.Background())
		}
		if cl.deadline.After(last) {
			last = cl.deadline
		}
	}
	return context.WithDeadline(context.Background(), last)
}

// sendBatch sends calls in one POST /batch and sets each one's outcome.
func (c *Client) sendBatch(calls []*call) {
	ctx, cancel := batchContext(calls)
	defer cancel()
	if len(calls) == 1 {
		// Alone: its own request says the same in fewer bytes.
		c.sendOne(ctx, calls[0])
		return
	}
	body := appendBatchBody(make([]byte, 0, 64+80*len(calls)), batchWait(ctx), calls)
	c.stats.batches.Add(1)
	resp, err := c.do(ctx, http.MethodPost, "/batch", body, "", "")
	if err != nil {
		// Not sent at all (EUnavailable), or every item may have been
		// applied (ETransient), as transportError decided.
		c.failAll(calls, err)
		return
	}
	a := newAnswer()
	defer a.release()
	defer a.drain(resp)
	if err := a.read(resp.Body); err != nil {
		c.failAll(calls, c.transportError(ctx, http.MethodPost, "/batch", err, true))
		return
	}
	data := a.bytes()
	if resp.StatusCode != http.StatusOK {
		// The batch's own answer, such as a proxy's page: each item's is
		// what it would be to the item alone.
		for _, cl := range calls {
			if cl.remove {
				_, cl.err = c.removeAnswer(cl.path(), resp.StatusCode, resp.Header, data)
			} else {
				cl.err = c.answerError(cl.o, cl.method(), cl.path(), resp.StatusCode, resp.Header, data)
			}
			if cl.err == nil {
				cl.err = c.notTheAnswer(opCreate, http.MethodPost, "/batch", resp.StatusCode, data, `{"results": [...]}`)
			}
		}
		return
	}
	results, err := decodeResults(data)
	if err != nil || len(results) != len(calls) {
		c.failAll(calls, c.notTheAnswer(opCreate, http.MethodPost, "/batch", resp.StatusCode, data,
			fmt.Sprintf(`{"results": [...]} with %d results`, len(calls))))
		return
	}
	for i, cl := range calls {
		r := &results[i]
		if r.Status == 0 {
			cl.err = &core.Error{Code: core.ETransient,
				Message: fmt.Sprintf("%s: %s %s in a batch: no answer: the node reset the item's connection; it may have been applied", c.name, cl.method(), cl.path())}
			continue
		}
		h := make(http.Header, len(r.Headers)+1)
		for k, v := range r.Headers {
			h[http.CanonicalHeaderKey(k)] = []string{v}
		}
		if r.Status >= 300 && r.Headers != nil || r.Status >= 300 && len(r.Body) > 0 && r.Body[0] == '{' {
			h["Content-Type"] = contentJSON
		}
		if cl.remove {
			cl.removed, cl.err = c.removeAnswer(cl.path(), r.Status, h, []byte(r.Body))
		} else {
			cl.err = c.answerError(cl.o, cl.method(), cl.path(), r.Status, h, []byte(r.Body))
		}
	}
}

// appendBatchBody appends the POST /batch body of calls to b: the JSON of
// the batchItems they stand for, written out (encoding/json's reflection
// was 4% of a client's CPU), with empty fields left out. wait is the
// batch's wait, if not "".
func appendBatchBody(b []byte, wait string, calls []*call) []byte {
	b = append(b, '{')
	if wait != "" {
		b = append(append(append(b, `"wait":"`...), wait...), `",`...)
	}
	b = append(b, `"items":[`...)
	for i, cl := range calls {
		if i > 0 {
			b = append(b, ',')
		}
		op, token, tokenField := "create", cl.token, "timestamp"
		if cl.o == opDelete {
			op = "delete"
		}
		if cl.remove {
			op, tokenField = "remove", "older_than"
		}
		b = append(append(append(b, `{"op":"`...), op...), `","groupId":`...)
		b = appendJSONString(b, string(cl.id))
		if token != "" {
			b = append(append(append(b, `,"`...), tokenField...), `":`...)
			b = appendJSONString(b, string(token))
		}
		if cl.fence != "" {
			b = appendJSONString(append(b, `,"fence":`...), string(cl.fence))
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// decodeResults reads the results of a POST /batch answer: by the fast
// path (scanResults) if it can, else by encoding/json.
func decodeResults(data []byte) ([]batchResult, error) {
	if results, ok := scanResults(data); ok {
		return results, nil
	}
	var ans struct {
		Results []batchResult `json:"results"`
	}
	err := json.Unmarshal(data, &ans)
	return ans.Results, err
}

// batchWait is the wait a batch under ctx asks of the server: nine tenths
// of the time left until ctx's deadline, so that an item that hangs costs
// the others their answers only past it, and the answer still has a tenth
// to come back in. None without a deadline.
func batchWait(ctx context.Context) string {
	dl, ok := ctx.Deadline()
	if !ok {
		return ""
	}
	d := time.Until(dl) * 9 / 10
	if d <= 0 {
		return ""
	}
	return d.Round(time.Millisecond).String()
}

// sendOne sends cl in a request of its own, as Create, Delete or Remove
// without batches would.
func (c *Client) sendOne(ctx context.Context, cl *call) {
	resp, err := c.do(ctx, cl.method(), cl.path(), groupBody(cl.id), cl.singleToken(), cl.fence)
	if err != nil {
		cl.err = err
		return
	}
	a := newAnswer()
	defer a.release()
	defer a.drain(resp)
	if !cl.remove {
		cl.err = c.check(ctx, cl.o, cl.method(), cl.path(), resp, a, false)
		return
	}
	if err := a.read(resp.Body); err != nil {
		cl.err = c.transportError(ctx, cl.method(), cl.path(), err, true)
		return
	}
	cl.removed, cl.err = c.removeAnswer(cl.path(), resp.StatusCode, resp.Header, a.bytes())
}

// singleToken is the timestamp header of cl's own request.
func (cl *call) singleToken() core.Token {
	if cl.remove {
		return ""
	}
	return cl.token
}

// failAll gives every call a copy of err.
func (c *Client) failAll(calls []*call, err error) {
	for _, cl := range calls {
		if e, ok := err.(*core.Error); ok {
			cp := *e
			cl.err = &cp
		} else {
			cl.err = err
		}
	}
}
