package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// Timing of the records gauge: a scrape counts each node's records at most
// once per RecordsTTL, each count bounded by RecordsTimeout, so that
// frequent scrapes of a large store cost little.
const (
	RecordsTTL     = 10 * time.Second
	RecordsTimeout = 5 * time.Second
)

// metrics counts a Server's requests in a registry of its own, so that
// servers side by side (tests) keep apart, and serves it at GET /metrics.
// The labels follow client_golang's promhttp middleware: code and method,
// and handler for the path pattern, with rops' node and fault.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
	// series caches the counter and histogram of each label set
	// (seriesKey) seen, so that counting a request neither validates nor
	// hashes its labels again, nor takes the vectors' locks.
	series sync.Map
}

type seriesKey struct{ node, handler, method, code, fault string }

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// latencyBuckets spans a memory node's tens of microseconds to a hung
// request's timeout, in seconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(ns []core.Node) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rops_http_requests_total",
			Help: "Requests answered, by node (the 'node' header; empty for none or an unknown one), handler (path pattern), method (lower case, as promhttp's), code (the status; 444: connection reset with no answer) and injected fault (none if no fault fired).",
		}, []string{"node", "handler", "method", "code", "fault"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rops_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its answer, by node, handler and method.",
			Buckets: latencyBuckets,
		}, []string{"node", "handler", "method"}),
	}
	reg.MustRegister(m.requests, m.latency, newRecordsCollector(ns),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// count counts a request answered as aw recorded, after its fault, which
// a faulty node noted in aw's note; start is when it arrived, and aw.end
// when its answer ended if the access log read it (else count reads it).
func (m *metrics) count(s *Server, r *http.Request, start time.Time, aw *answerWriter) {
	note := &aw.ctx.Note
	status := aw.status
	if status == 0 {
		// Nothing written: net/http sends 200, unless the connection
		// was reset (taken over with no answer), by an item's fault or a
		// batch's.
		status = http.StatusOK
		if aw.reset || note.Fault == faults.FaultReset {
			status = statusNoResponse
		}
	}
	fault := note.Fault
	if fault == "" {
		fault = faults.FaultNone
	}
	key := seriesKey{s.nodeLabel(r), handlerLabel(r), methodLabel(r), statusLabel(status), fault}
	v, ok := m.series.Load(key)
	if !ok {
		// The labels' values come from fixed sets, so the cache is
		// bounded as the vectors are.
		v, _ = m.series.LoadOrStore(key, &series{
			requests: m.requests.WithLabelValues(key.node, key.handler, key.method, key.code, key.fault),
			latency:  m.latency.WithLabelValues(key.node, key.handler, key.method),
		})
	}
	se := v.(*series)
	se.requests.Inc()
	end := aw.end
	if end.IsZero() {
		end = time.Now()
	}
	se.latency.Observe(end.Sub(start).Seconds())
}

// nodeLabel returns the node r is for, as Server.node picks it, or "" if
// r names none, or one the server does not serve (bounding the label's
// values).
func (s *Server) nodeLabel(r *http.Request) string {
	v := r.Header[headerNode]
	switch {
	case len(v) == 1 && v[0] != "":
		if _, ok := s.byName[v[0]]; ok {
			return v[0]
		}
		return ""
	case len(v) == 0 && s.only != nil:
		return s.only.Name()
	}
	return ""
}

// The method label, as promhttp's middleware (InstrumentHandlerCounter,
// sanitizeMethod) writes it: the methods it knows, in lower case, and
// "unknown" for any other, so that a client cannot grow the label's values.
var labelMethods = []string{"get", "put", "head", "post", "delete", "connect", "options", "notify", "trace", "patch"}

// methodLabel returns r's method label, such as "post".
func methodLabel(r *http.Request) string {
	for _, m := range labelMethods {
		if len(r.Method) == len(m) && strings.EqualFold(r.Method, m) {
			return m
		}
	}
	return "unknown"
}

// The handler label: the path pattern a request was routed by, without
// the /v1 prefix, named as promhttp's examples name the label that tells
// handlers apart; "other" for a path no route serves.
var labelHandlers = []string{"/ping", "/stats", "/group", "/group/{id}", "/groups", "/batch", "/admin/faults", "/metrics", "/healthz", "/readyz"}

// handlerLabel returns r's handler label, such as "/group" or
// "/group/{id}", with the path taken as route takes it.
func handlerLabel(r *http.Request) string {
	p := routePath(r)
	if p == "/ping/" {
		return "/ping"
	}
	for _, h := range labelHandlers {
		if p == h {
			return h
		}
	}
	if strings.HasPrefix(p, "/group/") {
		return "/group/{id}"
	}
	return "other"
}

// statusLabels holds the status codes as text, so that counting a request
// allocates none.
var statusLabels = func() []string {
	t := make([]string, 600)
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusLabel(status int) string {
	if status >= 0 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return strconv.Itoa(status)
}

// recordsCollector is the gauge rops_node_records: each node's record
// count, read on scrape, at most once per RecordsTTL. A node whose count
// fails (down, or slower than RecordsTimeout) has no sample.
type recordsCollector struct {
	desc  *prometheus.Desc
	nodes []core.Node

	mu     sync.Mutex // one count at a time; held while counting
	at     time.Time  // when counts were read
	counts []int
	ok     []bool
}

func newRecordsCollector(ns []core.Node) *recordsCollector {
	return &recordsCollector{
		desc: prometheus.NewDesc("rops_node_records",
			"Records (groups) each node holds, as its Count reads them, at most once per "+RecordsTTL.String()+".",
			[]string{"node"}, nil),
		nodes:  ns,
		counts: make([]int, len(ns)),
		ok:     make([]bool, len(ns)),
	}
}

// Describe sends the gauge's description.
func (c *recordsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect sends each node's count, counting again if the last counts are
// older than RecordsTTL.
func (c *recordsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= RecordsTTL {
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), RecordsTimeout)
				defer cancel()
				count, err := n.Count(ctx)
				c.counts[i], c.ok[i] = count, err == nil
			})
		}
		wg.Wait()
		c.at = time.Now()
	}
	for i, n := range c.nodes {
		if c.ok[i] {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.counts[i]), n.Name())
		}
	}
}
