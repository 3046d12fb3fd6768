package core

import (
	"context"
	"fmt"
)

// Fencing at the nodes (Kleppmann's fencing tokens). A coordinator that
// loses an id's lock (a lease that expired while it was paused) may still
// send: no check inside a process can promise otherwise, as a pause may
// fall between the check and the send. So every request of an operation
// carries a fence, the token of the operation that holds the id's lock, and
// a Store that fences keeps, for each id, the greatest fence any request
// carried, and refuses with an EStale error any request whose fence is
// below it. Tokens on an id increase across coordinators (see
// SharedJournal), and whoever settles another process's intent reads every
// node it names under its own, greater fence before it reports: from then
// on the old holder's requests change nothing.
//
// The fence is not the record's token: an undo re-creates a record under
// the token of the operation it restores, long after, under the fence of
// the operation that holds the lock now.

type fenceKey struct{}

// WithFence returns ctx carrying fence: the token of the operation on
// whose behalf a request is made. An empty fence returns ctx unchanged.
func WithFence(ctx context.Context, fence Token) context.Context {
	if fence == "" {
		return ctx
	}
	return context.WithValue(ctx, fenceKey{}, fence)
}

// FenceOf returns the fence ctx carries (see WithFence), or "" for a
// request made on no operation's behalf (a listing, a client of the
// original protocol): such a request is not fenced.
func FenceOf(ctx context.Context) Token {
	f, _ := ctx.Value(fenceKey{}).(Token)
	return f
}

// CheckFence says what a Store that fences must do with a request carrying
// fence, for an id whose greatest fence it holds is held ("" if none): go
// on and, if raise, record fence as the id's fence, in the same
// transaction as the request's write, if any (reads raise it too: a
// settling coordinator's read is what shuts the old holder out); or refuse
// it with an EStale error, which carries held in its Fence, touching
// nothing. A request without a fence is never refused and raises nothing.
func CheckFence(id GroupID, held, fence Token) (raise bool, err error) {
	switch {
	case fence == "":
		return false, nil
	case held != "" && CompareTokens(fence, held) < 0:
		return false, &Error{Code: EStale, Fence: held, Message: fmt.Sprintf(
			"group record %q: fence %s is older than %s, which a later holder of the id sent: the request is from a coordinator that lost the id's lock, and is refused",
			id, fence, held)}
	case held == "" || CompareTokens(fence, held) > 0:
		return true, nil
	}
	return false, nil
}
