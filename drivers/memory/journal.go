package memory

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/reliable-ops/rops/core"
)

// Journal is a core.Journal in memory: intents last as long as the process,
// so it recovers from failed compensation but not from a crash. It is safe
// for concurrent use.
type Journal struct {
	mu      sync.Mutex
	intents map[core.Token]entry
	seq     uint64 // orders intents by Begin, for Pending
}

// entry is one intent and when it began.
type entry struct {
	seq    uint64
	intent core.Intent
}

var _ core.Journal = (*Journal)(nil)

// NewJournal returns an empty Journal.
func NewJournal() *Journal {
	return &Journal{intents: make(map[core.Token]entry)}
}

// Begin records in. It returns an EInvalid error if an intent with the same
// token is already recorded: tokens name one operation each.
func (j *Journal) Begin(ctx context.Context, in core.Intent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.intents[in.Token]; ok {
		return core.Errorf(core.EInvalid, "journal: intent %s for %q is already recorded", in.Token, in.ID)
	}
	j.seq++
	j.intents[in.Token] = entry{seq: j.seq, intent: clone(in)}
	return nil
}

// Update replaces the intent with in's token, keeping its place in Pending.
// It returns an ErrNotFound error if there is none.
func (j *Journal) Update(ctx context.Context, in core.Intent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	e, ok := j.intents[in.Token]
	if !ok {
		return core.Errorf(core.ENotFound, "journal: no intent %s to update", in.Token)
	}
	e.intent = clone(in)
	j.intents[in.Token] = e
	return nil
}

// Finish removes the intent with token; an unknown token is not an error.
func (j *Journal) Finish(ctx context.Context, token core.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.intents, token)
	return nil
}

// Pending returns the unfinished intents in the order they began.
func (j *Journal) Pending(ctx context.Context) ([]core.Intent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	entries := slices.Collect(maps.Values(j.intents))
	j.mu.Unlock()
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	intents := make([]core.Intent, len(entries))
	for i, e := range entries {
		intents[i] = clone(e.intent)
	}
	return intents, nil
}

// clone copies in deeply, so that neither the caller's later changes nor the
// journal's reach the other: a durable journal gets this from serializing.
func clone(in core.Intent) core.Intent {
	in.Nodes = slices.Clone(in.Nodes)
	in.PreImage = maps.Clone(in.PreImage)
	return in
}
