package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// decodeBatch reads a POST /batch body, or returns a 400 error saying what
// is wrong with it.
func decodeBatch(body []byte) ([]batchItem, *httpError) {
	const example = `{"items": [{"op": "create", "node": "node01", "groupId": "5", "timestamp": "1633786070.879454"}]}`
	var b struct {
		Items []batchItem `json:"items"`
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil {
		return nil, reject(http.StatusBadRequest, "the body must be a JSON object such as "+example+": "+jsonProblem(err))
	}
	if d.More() {
		return nil, reject(http.StatusBadRequest, "the body holds more than one JSON value: send one object such as "+example)
	}
	switch {
	case len(b.Items) == 0:
		return nil, reject(http.StatusBadRequest, "no items: send a JSON object such as "+example)
	case len(b.Items) > MaxBatchItems:
		return nil, reject(http.StatusBadRequest, fmt.Sprintf("%d items: a batch holds at most %d", len(b.Items), MaxBatchItems))
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
			return nil, reject(http.StatusBadRequest, fmt.Sprintf("item %d: %s", i, problem))
		}
	}
	return b.Items, nil
}

// validItemValue reports whether s is empty or could travel in a header.
func validItemValue(s string) bool { return s == "" || validHeaderValue(s) }

// handleBatch answers POST /batch: 200 with one result per item, in order,
// each the answer the item's single request would have had. Each item goes
// through the single route's handler, so that node lookup, checks, fences,
// faults and the mapping of errors are the same.
func (s *Server) handleBatch(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	buf, herr := readBody(r, MaxBatchBody)
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	items, herr := decodeBatch(buf.Bytes())
	buf.release()
	if herr != nil {
		writeHTTPError(w, herr)
		return
	}
	results := make([]batchResult, len(items))
	for i := range items {
		results[i] = s.batchItem(ctx, r, &items[i])
	}
	b, err := json.Marshal(struct {
		Results []batchResult `json:"results"`
	}{results})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the results: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, append(b, '\n'))
}

// batchItem answers one item as its single request would be answered.
func (s *Server) batchItem(ctx context.Context, batch *http.Request, it *batchItem) batchResult {
	h := http.Header{}
	if it.Node != "" {
		h[headerNode] = []string{it.Node}
	} else if v := batch.Header[headerNode]; len(v) > 0 {
		h[headerNode] = v
	}
	if it.Timestamp != "" {
		h[headerTimestamp] = []string{it.Timestamp}
	}
	if it.Fence != "" {
		h[headerFence] = []string{it.Fence}
	}
	body := make([]byte, 0, len(it.GroupID)+16)
	body = append(append(append(body, `{"groupId": `...), it.GroupID...), '}')
	r := &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Path: "/group"},
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
		Host:          batch.Host,
		RemoteAddr:    batch.RemoteAddr,
	}
	r.Body = readCloser{bytes.NewReader(body)}
	r = r.WithContext(ctx)
	iw := &itemWriter{header: http.Header{}}
	switch it.Op {
	case "create":
		s.handleCreate(ctx, iw, r)
	default:
		r.Method = http.MethodDelete
		if it.OlderThan != "" {
			r.URL.RawQuery = queryOlderThan + "=" + url.QueryEscape(it.OlderThan)
		}
		s.handleDelete(ctx, iw, r)
	}
	res := batchResult{Status: iw.status, Body: iw.body.String()}
	if iw.reset {
		return batchResult{}
	}
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

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

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
