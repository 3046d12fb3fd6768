package faults

import "context"

// BatchFault is the transport fault that a whole batch of calls, sent to a
// node in one request (an HTTP server's POST /batch), meets: Faults.BatchRate.
type BatchFault int

// Batch faults, each drawn with equal chance when BatchRate fires.
const (
	// BatchNone: the batch is run and answered as usual.
	BatchNone BatchFault = iota
	// BatchLostBefore: the connection is reset before the batch is read;
	// nothing is applied.
	BatchLostBefore
	// BatchLostAfter: every item is run, then the connection is reset with
	// no answer.
	BatchLostAfter
	// BatchLate: nothing is applied now and the batch is never answered;
	// the whole batch runs LateDelay later, in the background (Later).
	BatchLate
	// BatchDuplicate: the batch is run and answered, and runs again
	// LateDelay later, in the background (Later).
	BatchDuplicate
)

// String returns the fault's name as a Note records it, such as
// "batch_late", or "none".
func (f BatchFault) String() string {
	switch f {
	case BatchLostBefore:
		return FaultBatchLostBefore
	case BatchLostAfter:
		return FaultBatchLostAfter
	case BatchLate:
		return FaultBatchLate
	case BatchDuplicate:
		return FaultBatchDuplicate
	}
	return FaultNone
}

// BatchFault draws the fault that the next batch sent to the node meets,
// and records it in ctx's Note (WithNote) if one fires. The draws come from
// the node's seed and how many batches came before, apart from the calls'
// draws, so that switching BatchRate on shifts no call's faults. A node that
// is Down meets none: each item is refused as its own call would be. It is
// safe for concurrent use.
func (n *Node) BatchFault(ctx context.Context) BatchFault {
	f, rng := n.draws("batch", "")
	if rng == nil || f.Down || !(unit(rng.Uint64()) < f.BatchRate) {
		return BatchNone
	}
	bf := BatchLostBefore + BatchFault(rng.Uint64()%4)
	note(ctx, bf.String())
	return bf
}

// Later runs fn in the background LateDelay (DefaultLateDelay if zero) from
// now on the node's clock, as a late or duplicated batch runs again, unless
// the node is closed first. fn's context is the node's own, which ends at
// Close; it carries no fence, so fn must give each call its own. Settle
// waits for fn, and Close drops it if it has not started, as it does the
// node's late and duplicate applies. It is safe for concurrent use.
func (n *Node) Later(fn func(ctx context.Context)) {
	d := n.Faults().duplicateDelay()
	n.after(d, func() { fn(n.bg) })
}
