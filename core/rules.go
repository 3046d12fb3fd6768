package core

// The Store contract's rules for writes, decided once here so that every
// Store implementation (and every test double) applies the same ones.

// CheckCreate says what Create(id, token) must do to a node that holds held
// for id (found is false if it holds nothing): write the record (write), do
// nothing and succeed (a replay with the same token), or fail with an
// ErrExists error (another token).
func CheckCreate(id GroupID, held Token, found bool, token Token) (write bool, err error) {
	switch {
	case !found:
		return true, nil
	case held != token:
		return false, Errorf(EExists, "group record %q exists with another token", id)
	}
	return false, nil
}

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
