package faults_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/reliable-ops/rops/core"
)

// mapStore is a minimal core.Store that counts the calls that reach it, so
// tests can tell whether a fault let a call through.
type mapStore struct {
	mu    sync.Mutex
	recs  map[core.GroupID]core.Token
	calls int
}

func newMapStore() *mapStore { return &mapStore{recs: map[core.GroupID]core.Token{}} }

func (s *mapStore) Create(_ context.Context, id core.GroupID, token core.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if t, ok := s.recs[id]; ok && t != token {
		return core.Errorf(core.EExists, "group %q exists", id)
	}
	s.recs[id] = token
	return nil
}

func (s *mapStore) Delete(_ context.Context, id core.GroupID, token core.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if t, ok := s.recs[id]; !ok || token != "" && t != token {
		return core.Errorf(core.ENotFound, "no group record found with id %q", id)
	}
	delete(s.recs, id)
	return nil
}

func (s *mapStore) Get(_ context.Context, id core.GroupID) (core.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	t, ok := s.recs[id]
	if !ok {
		return core.Record{}, core.Errorf(core.ENotFound, "no group record found with id %q", id)
	}
	return core.Record{ID: id, Token: t}, nil
}

func (s *mapStore) List(_ context.Context, after core.GroupID, limit int) ([]core.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	var recs []core.Record
	for id, t := range s.recs {
		if id > after {
			recs = append(recs, core.Record{ID: id, Token: t})
		}
	}
	slices.SortFunc(recs, func(a, b core.Record) int { return cmp.Compare(a.ID, b.ID) })
	return recs[:min(limit, len(recs))], nil
}

func (s *mapStore) Count(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return len(s.recs), nil
}

// callCount returns how many calls reached the store.
func (s *mapStore) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// has reports whether the store holds id.
func (s *mapStore) has(id core.GroupID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recs[id]
	return ok
}

// fakeClock records the sleeps asked of it and returns at once, unless the
// context has ended.
type fakeClock struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return time.Unix(1633806680, 0) }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// doneSpy is a context that signals the first time someone waits on it.
type doneSpy struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newDoneSpy(ctx context.Context) *doneSpy {
	return &doneSpy{Context: ctx, waiting: make(chan struct{})}
}

func (s *doneSpy) Done() <-chan struct{} {
	s.once.Do(func() { close(s.waiting) })
	return s.Context.Done()
}

// fenceStore is a mapStore that fences as a Store must (core.CheckFence):
// it keeps each id's greatest fence and refuses a call whose fence is
// below it, touching nothing.
type fenceStore struct {
	*mapStore
	fmu    sync.Mutex
	fences map[core.GroupID]core.Token
}

func newFenceStore() *fenceStore {
	return &fenceStore{mapStore: newMapStore(), fences: map[core.GroupID]core.Token{}}
}

// check applies core.CheckFence to a call on id under ctx's fence. The
// check and the call are not one step: the tests make one call at a time.
func (s *fenceStore) check(ctx context.Context, id core.GroupID) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	fence := core.FenceOf(ctx)
	raise, err := core.CheckFence(id, s.fences[id], fence)
	if raise {
		s.fences[id] = fence
	}
	return err
}

func (s *fenceStore) Create(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	return s.mapStore.Create(ctx, id, token)
}

func (s *fenceStore) Delete(ctx context.Context, id core.GroupID, token core.Token) error {
	if err := s.check(ctx, id); err != nil {
		return err
	}
	return s.mapStore.Delete(ctx, id, token)
}

func (s *fenceStore) Get(ctx context.Context, id core.GroupID) (core.Record, error) {
	if err := s.check(ctx, id); err != nil {
		return core.Record{}, err
	}
	return s.mapStore.Get(ctx, id)
}
