package core

// The Store contract's rules for writes, decided once here so that every
// Store implementation (and every test double) applies the same ones.

// CheckCreate says what Create(id, token) must do to a node that holds held
// for id (found is false if it holds nothing) and, if fenced, a tombstone
// for (id, token): write the record (write), do nothing and succeed (a
// replay with the same token), fail with an ErrFenced error (nothing held,
// and a delete of this very token already ran: the create is a late one), or
// fail with an ErrExists error (another token).
func CheckCreate(id GroupID, held Token, found bool, token Token, fenced bool) (write bool, err error) {
	switch {
	case !found && fenced:
		return false, Errorf(EFenced, "group record %q with token %q was deleted: a create with that token is refused", id, token)
	case !found:
		return true, nil
	case held != token:
		return false, Errorf(EExists, "group record %q exists with another token", id)
	}
	return false, nil
}

// A Store that fences (see Fencer) leaves a tombstone for (id, token) on
// every conditional Delete(id, token), whether or not it found the record,
// for (id, held) on an unconditional one that removed a record, and for
// (id, token) on every Create(id, token) that CheckCreate refuses with
// ErrExists (so that a copy of that create delivered later cannot land once
// the record is gone), and passes fenced to CheckCreate accordingly.

// CheckDelete says what Delete(id, token) must do to a node that holds held
// for id: remove the record (write), or fail with an ErrNotFound error if
// there is none or, for a conditional delete (token not empty), it holds
// another token.
func CheckDelete(id GroupID, held Token, found bool, token Token) (write bool, err error) {
	switch {
	case !found:
		return false, Errorf(ENotFound, "no group record %q", id)
	case token != "" && held != token:
		return false, Errorf(ENotFound, "no group record %q with token %q", id, token)
	}
	return true, nil
}

// CheckRemove says what Remove(id, before) must do to a node that holds
// held for id (found is false if it holds nothing), given what an earlier
// Remove(id, before) removed, if the node recorded one (known): remove the
// record (write) and answer its token, answer the recorded token again
// (touching nothing), fail with an ErrNotFound error (nothing to remove),
// or fail with an ErrExists error and the token held (the record is not
// older than before). A Store that removes records,
// with the removed token, that before removed it, and tombstones that token
// as a conditional Delete of it would. It records no removal of nothing:
// only a record older than before could be removed later, and tombstones
// keep those from coming back.
func CheckRemove(id GroupID, held Token, found bool, before Token, removed Token, known bool) (write bool, tok Token, err error) {
	switch {
	case known:
		return false, removed, nil
	case !found:
		return false, "", Errorf(ENotFound, "no group record %q", id)
	case CompareTokens(held, before) >= 0:
		return false, held, Errorf(EExists, "group record %q holds token %q, not older than %q: not removed", id, held, before)
	}
	return true, held, nil
}
