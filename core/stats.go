package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reliable-ops/rops/core/pool"
)

// Stats defaults.
const (
	DefaultPageSize     = 1000
	DefaultMaxDivergent = 100
	DefaultReread       = 1000
)

// StatsOptions tunes Stats.
type StatsOptions struct {
	// PageSize is how many records one List request asks for.
	PageSize int
	// MaxDivergent bounds the divergent ids returned (0: DefaultMaxDivergent,
	// negative: none); all are counted.
	MaxDivergent int
	// Reread bounds how many of the ids the listing found divergent are
	// read again from every node before they are reported (0:
	// DefaultReread, negative: none); the others are reported as listed.
	Reread int
}

// NodeCount is how many records one node holds.
type NodeCount struct {
	Node  string `json:"node"`
	Count int    `json:"count"`
}

// Divergence is an id that not every node holds.
type Divergence struct {
	ID GroupID `json:"id"`
	// On maps each node that holds the id to the token it holds there.
	On map[string]Token `json:"on"`
}

// Stats is what the nodes hold, compared as sets of ids.
type Stats struct {
	Nodes      []NodeCount `json:"nodes"`
	Consistent bool        `json:"consistent"`
	// Divergent lists, in id order, up to MaxDivergent ids that some
	// nodes hold and others do not.
	Divergent []Divergence `json:"divergent"`
	// DivergentCount counts all such ids.
	DivergentCount int `json:"divergent_count"`
	// CountsOnly is set when a node cannot list its records (the original
	// server has no listing): then only the counts were compared.
	CountsOnly bool `json:"counts_only,omitempty"`
	// Settled counts the ids that the listing found on some nodes only
	// but that every node, or none, held when read again: an operation on
	// them was under way.
	Settled int `json:"settled,omitempty"`
}

// Scanner is a Node (or Store) that can stream its records: Stats then
// reads it in one pass instead of a List request per page. A wrapper that
// adds behaviour to a Node must implement Scan itself to be one.
type Scanner interface {
	// Scan calls fn with every record whose id is greater than after, in
	// ascending id order, until fn returns false or the records end. It
	// returns ctx's error if ctx ends first, and an error if the records
	// cannot all be read: a stream that breaks off fails, never ends early
	// without an error.
	Scan(ctx context.Context, after GroupID, fn func(Record) bool) error
}

// Scan streams the records of s whose ids are greater than after to fn, as
// Scanner does: with s's own Scan if s is a Scanner, else page by page
// with List.
func Scan(ctx context.Context, s Store, after GroupID, fn func(Record) bool) error {
	if sc, ok := s.(Scanner); ok {
		return sc.Scan(ctx, after, fn)
	}
	for {
		page, err := s.List(ctx, after, DefaultPageSize)
		if err != nil {
			return err
		}
		for _, rec := range page {
			if !fn(rec) {
				return nil
			}
		}
		if len(page) < DefaultPageSize {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// cursor pages through one node's records in id order: by List requests,
// or from a scan's pages if the node is a Scanner.
type cursor struct {
	node  Node
	page  []Record
	after GroupID
	done  bool
	count int
	// pages delivers the pages of a Scanner's scan (scan), and free
	// takes back the one used up (whole), for the scan to fill again.
	pages <-chan scanned
	free  chan<- []Record
	whole []Record
}

// scanned is one page of a scan, the last if done, or the error that ended
// the scan.
type scanned struct {
	page []Record
	done bool
	err  error
}

// CompareOptions says how Compare reads the nodes: StatsOptions, and the
// request timeout, retries and clock a Coordinator's Config would give.
type CompareOptions struct {
	StatsOptions
	// RequestTimeout bounds every request (0: DefaultRequestTimeout); for
	// a scan, the time the node sends nothing.
	RequestTimeout time.Duration
	// Retries is how many times a failed request is retried (0: none), as
	// the Coordinator retries it.
	Retries int
	// Clock is the time source (nil: SystemClock).
	Clock Clock
}

// Compare reads the records of nodes and compares them: the Stats of a
// cluster, as a function over its nodes, for a program that runs no
// operation on them (rops serve's GET /stats). It fails with EInvalid if
// there are no nodes or two share a name.
func Compare(ctx context.Context, nodes []Node, opts CompareOptions) (Stats, error) {
	retries := max(opts.Retries, 0)
	c, err := New(Config{
		Nodes: nodes,
		NewBackoff: func() Backoff {
			return Exponential(DefaultBackoffBase, DefaultBackoffCap, retries, nil)
		},
		RequestTimeout: opts.RequestTimeout,
		Clock:          opts.Clock,
	})
	if err != nil {
		return Stats{}, err
	}
	return c.Stats(ctx, opts.StatsOptions)
}

// Stats reads every node's records page by page, merges them in id order and
// reports per-node counts and the ids that differ. Memory stays bounded by
// PageSize per node, and by Reread and MaxDivergent ids, however many
// records there are. Reads are retried like writes; a node that cannot be
// listed fails the call.
//
// The listing is not a snapshot: while a job runs, an id it is creating or
// deleting may be listed on some nodes only. So the first Reread divergent
// ids are read again from every node once the listing is done, and an id
// every node (or none) then holds is not reported (it counts in Settled);
// the counts are corrected by what the reads found. An id whose read fails
// on a node is reported as listed.
func (c *Coordinator) Stats(ctx context.Context, opts StatsOptions) (Stats, error) {
	if opts.MaxDivergent == 0 {
		opts.MaxDivergent = DefaultMaxDivergent
	}
	if opts.Reread == 0 {
		opts.Reread = DefaultReread
	}
	st := Stats{Divergent: []Divergence{}}
	add := func(d Divergence) {
		st.DivergentCount++
		if len(st.Divergent) < opts.MaxDivergent {
			st.Divergent = append(st.Divergent, d)
		}
	}
	// The ids past the first Reread come after them in id order, so they
	// are kept apart until the first are read again.
	var suspects, later []Divergence
	laterCount := 0
	counts, err := c.divergences(ctx, opts.PageSize, func(d Divergence) error {
		if len(suspects) < opts.Reread {
			suspects = append(suspects, d)
			return nil
		}
		laterCount++
		if len(later) < opts.MaxDivergent {
			later = append(later, d)
		}
		return nil
	})
	if errors.Is(err, ErrUnsupported) {
		return (&opRun{c: c}).counts(ctx)
	}
	if err != nil {
		return Stats{}, err
	}
	reread := c.reread(ctx, suspects)
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	for i, d := range reread {
		for j := range counts {
			_, was := suspects[i].On[counts[j].Node]
			_, is := d.On[counts[j].Node]
			switch {
			case is && !was:
				counts[j].Count++
			case was && !is:
				counts[j].Count--
			}
		}
		if len(d.On) == 0 || len(d.On) == len(c.cfg.Nodes) {
			st.Settled++
			continue
		}
		add(d)
	}
	for _, d := range later {
		add(d)
	}
	st.DivergentCount += laterCount - len(later)
	st.Nodes = counts
	st.Consistent = st.DivergentCount == 0
	return st, nil
}

// reread reads every id of ds again from every node, each read retried as
// Stats' listing is, and returns ds as found then, in the same order. An
// id whose read fails on some node is returned as it was.
func (c *Coordinator) reread(ctx context.Context, ds []Divergence) []Divergence {
	out := make([]Divergence, len(ds))
	r := &opRun{c: c}
	copy(out, ds) // pool.ForEach stops taking ids once ctx ends: those stay as listed
	pool.ForEach(ctx, indexes(len(ds)), DefaultConcurrency, func(i int) {
		on := make(map[string]Token, len(c.cfg.Nodes))
		for _, n := range c.cfg.Nodes {
			rec, err := fetch(ctx, r, n, func(ctx context.Context) (Record, error) { return n.Get(ctx, ds[i].ID) })
			switch {
			case err == nil:
				on[n.Name()] = rec.Token
			case ErrorCode(err) != ENotFound:
				return
			}
		}
		out[i].On = on
	})
	return out
}

// divergences reads every node's records page by page (DefaultPageSize if
// pageSize < 1), merges them in id order, calls fn with every id that some
// nodes hold and others do not, in id order, and returns how many records
// each node holds. It stops at fn's first error and returns it. A node that
// cannot list its records fails it with an ErrUnsupported error.
func (c *Coordinator) divergences(ctx context.Context, pageSize int, fn func(Divergence) error) ([]NodeCount, error) {
	if pageSize < 1 {
		pageSize = DefaultPageSize
	}
	r := &opRun{c: c}
	// The scans stop, and are waited for, when the merge does.
	ctx, cancel := context.WithCancel(ctx)
	var scans sync.WaitGroup
	defer scans.Wait()
	defer cancel()
	curs := make([]*cursor, len(c.cfg.Nodes))
	for i, n := range c.cfg.Nodes {
		curs[i] = &cursor{node: n}
		if sc, ok := n.(Scanner); ok {
			// One page waits while the merge uses another: the node
			// is read while the others catch up.
			pages := make(chan scanned, 1)
			free := make(chan []Record, 2)
			curs[i].pages, curs[i].free = pages, free
			scans.Go(func() { r.scan(ctx, n, sc, pageSize, pages, free) })
		}
	}
	for {
		if err := r.refill(ctx, curs, pageSize); err != nil {
			return nil, err
		}
		// The smallest id at the head of any cursor, and who holds it.
		var low GroupID
		found := false
		for _, cur := range curs {
			if len(cur.page) > 0 && (!found || cur.page[0].ID < low) {
				low, found = cur.page[0].ID, true
			}
		}
		if !found {
			break
		}
		// Most ids are on every node: build the map of holders only for
		// those that are not, so a million agreeing ids allocate nothing.
		holders := 0
		for _, cur := range curs {
			if len(cur.page) > 0 && cur.page[0].ID == low {
				holders++
			}
		}
		var on map[string]Token
		if holders < len(curs) {
			on = make(map[string]Token, holders)
		}
		for _, cur := range curs {
			if len(cur.page) > 0 && cur.page[0].ID == low {
				if on != nil {
					on[cur.node.Name()] = cur.page[0].Token
				}
				cur.page = cur.page[1:]
				cur.count++
			}
		}
		if on != nil {
			if err := fn(Divergence{ID: low, On: on}); err != nil {
				return nil, err
			}
		}
	}
	counts := make([]NodeCount, len(curs))
	for i, cur := range curs {
		counts[i] = NodeCount{Node: cur.node.Name(), Count: cur.count}
	}
	return counts, nil
}

// refill fetches the next page, in parallel, of every cursor whose page is
// used up.
func (r *opRun) refill(ctx context.Context, curs []*cursor, limit int) error {
	// Called once per merged id: most calls have nothing to fetch, and
	// must not allocate.
	if !slices.ContainsFunc(curs, func(cur *cursor) bool { return !cur.done && len(cur.page) == 0 }) {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(curs))
	for i, cur := range curs {
		if cur.done || len(cur.page) > 0 {
			continue
		}
		if cur.pages != nil {
			// The scan's goroutine fetches: wait for its next page,
			// and give it back the last one to fill.
			if cur.whole != nil {
				select {
				case cur.free <- cur.whole[:0]:
				default:
				}
			}
			var p scanned
			select {
			case p = <-cur.pages:
			case <-ctx.Done():
				p.err = ctx.Err()
			}
			if p.err != nil {
				errs[i] = fmt.Errorf("cannot list the records of %s: %w", cur.node.Name(), p.err)
				continue
			}
			cur.page, cur.whole, cur.done = p.page, p.page, p.done
			continue
		}
		wg.Go(func() {
			page, err := fetch(ctx, r, cur.node, func(ctx context.Context) ([]Record, error) {
				return cur.node.List(ctx, cur.after, limit)
			})
			if err != nil {
				errs[i] = fmt.Errorf("cannot list the records of %s: %w", cur.node.Name(), err)
				return
			}
			// A page must advance past the last one in id order; a node
			// that repeats or misorders records would make Stats loop
			// forever or miscount.
			prev := cur.after
			for j, rec := range page {
				if (j > 0 || prev != "") && rec.ID <= prev {
					errs[i] = Errorf(EInternal, "cannot list the records of %s: it listed %q after %q; records must come sorted by id, after the one asked for", cur.node.Name(), rec.ID, prev)
					return
				}
				prev = rec.ID
			}
			cur.page, cur.done = page, len(page) < limit
			if len(page) > 0 {
				cur.after = page[len(page)-1].ID
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scan reads node's records with sc.Scan into pages of pageSize records,
// sent to out in id order; the last one is marked done, or carries the
// error that ended the scan. A scan that fails with a retryable error is
// resumed after the last record it delivered, retried as List requests
// are; one that delivered records since its last failure starts a fresh
// backoff, so that a long listing over a flaky link is not cut short.
func (r *opRun) scan(ctx context.Context, node Node, sc Scanner, pageSize int, out chan<- scanned, free <-chan []Record) {
	var (
		after    GroupID
		page     = make([]Record, 0, pageSize)
		orderErr error
	)
	send := func(p scanned) bool {
		select {
		case out <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// A scan that delivered records since its last failure starts a
	// fresh backoff.
	var bo Backoff
	fresh := func() Backoff {
		return BackoffFunc(func() (time.Duration, bool) {
			if bo == nil {
				bo = r.c.cfg.NewBackoff()
			}
			return bo.Next()
		})
	}
	// No quick retries (nil answers): a listing is out for long, so the
	// node answers others while it is, whatever cut it (a proxy's or a
	// load balancer's timeout); the backoff alone says when to resume.
	_, err := retry(ctx, r.c.cfg.Clock, nil, fresh, func(ctx context.Context, attempt int) (struct{}, error) {
		progress := false
		err := r.stream(ctx, node, attempt > 0, func(ctx context.Context, w *watch) error {
			return sc.Scan(ctx, after, func(rec Record) bool {
				// A node that repeats or misorders records would make
				// the merge miscount.
				if after != "" && rec.ID <= after {
					orderErr = Errorf(EInternal, "%s listed %q after %q; records must come sorted by id, after the one asked for", node.Name(), rec.ID, after)
					return false
				}
				page = append(page, rec)
				after, progress = rec.ID, true
				w.seen.Add(1)
				if len(page) < pageSize {
					return true
				}
				w.paused.Store(true) // waiting for the merge is not the node's silence
				defer w.paused.Store(false)
				if !send(scanned{page: page}) {
					return false
				}
				select {
				case page = <-free:
				default:
					page = make([]Record, 0, pageSize)
				}
				return true
			})
		})
		if orderErr != nil {
			return struct{}{}, orderErr
		}
		if progress {
			bo = nil
		}
		return struct{}{}, retryable(err)
	})
	switch {
	case ctx.Err() != nil:
	case err == nil:
		send(scanned{page: page, done: true})
	default:
		send(scanned{err: err})
	}
}

// watch is what stream's watchdog sees of a scan: records seen, and
// whether the scan waits for its reader rather than for the node.
type watch struct {
	seen   atomic.Uint64
	paused atomic.Bool
}

// stream runs f, one Scan of node, as call runs a request, except that
// RequestTimeout bounds the time the node sends nothing (it fails after
// one to two of them without a record) rather than the whole scan, which
// takes as long as the node has records.
func (r *opRun) stream(ctx context.Context, node Node, retry bool, f func(ctx context.Context, w *watch) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Code: EUnavailable, Message: fmt.Sprintf("%s: request not sent: %v", node.Name(), err), Err: err}
	}
	if err := admit(r.c.cfg.Breaker, node.Name(), r.c.cfg.Clock.Now()); err != nil {
		return err
	}
	r.requests.Add(1)
	if retry {
		r.retries.Add(1)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := new(watch)
	var silent atomic.Bool
	var watchdog sync.WaitGroup
	defer watchdog.Wait()
	defer cancel()
	watchdog.Go(func() {
		// Real time, as call's timeout: a test clock may not sleep.
		tick := time.NewTicker(r.c.cfg.RequestTimeout)
		defer tick.Stop()
		last := uint64(0)
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			if n := w.seen.Load(); n != last || w.paused.Load() {
				last = n
				continue
			}
			silent.Store(true)
			cancel()
			return
		}
	})
	err := f(sctx, w)
	if ctx.Err() == nil {
		observe(r.c.cfg.Breaker, node.Name(), r.c.cfg.Clock.Now(), err)
	}
	if err == nil || !silent.Load() && ctx.Err() == nil || isDefinite(err) {
		return err
	}
	if ctx.Err() != nil {
		return &Error{Code: ETransient, Message: fmt.Sprintf("%s: request abandoned: %v", node.Name(), ctx.Err()), Err: ctx.Err()}
	}
	return &Error{Code: ETransient, Message: fmt.Sprintf("%s: sent no record for %v", node.Name(), r.c.cfg.RequestTimeout), Err: err}
}

// counts is Stats for nodes that cannot list their records: each node's
// count, consistent if all are equal.
func (r *opRun) counts(ctx context.Context) (Stats, error) {
	st := Stats{Divergent: []Divergence{}, CountsOnly: true, Consistent: true}
	for _, n := range r.c.cfg.Nodes {
		count, err := fetch(ctx, r, n, n.Count)
		if err != nil {
			return Stats{}, fmt.Errorf("cannot count the records of %s: %w", n.Name(), err)
		}
		st.Consistent = st.Consistent && (len(st.Nodes) == 0 || st.Nodes[0].Count == count)
		st.Nodes = append(st.Nodes, NodeCount{Node: n.Name(), Count: count})
	}
	return st, nil
}
