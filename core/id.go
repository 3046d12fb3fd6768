package core

import (
	"fmt"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxGroupIDLen is the longest group id, in bytes, that ParseGroupID accepts.
const MaxGroupIDLen = 128

// GroupID names a group record. It is unique per node. Use ParseGroupID to
// make one from user input.
type GroupID string

// ParseGroupID returns s as a GroupID, or an error with code EInvalid that
// says what is wrong: a GroupID is 1 to 128 bytes of printable UTF-8 with no
// '/', whitespace or control characters (it travels in URL paths and headers).
func ParseGroupID(s string) (GroupID, error) {
	if err := GroupID(s).Validate(); err != nil {
		return "", err
	}
	return GroupID(s), nil
}

// Validate reports whether id is a valid group id; see ParseGroupID.
func (id GroupID) Validate() error {
	s := string(id)
	switch {
	case s == "":
		return Errorf(EInvalid, "invalid group id: it is empty; give 1 to %d printable characters", MaxGroupIDLen)
	case len(s) > MaxGroupIDLen:
		return Errorf(EInvalid, "invalid group id %.20q...: it is %d bytes long, the limit is %d", s, len(s), MaxGroupIDLen)
	case !utf8.ValidString(s):
		return Errorf(EInvalid, "invalid group id %q: it is not valid UTF-8", s)
	}
	for i, r := range s {
		switch {
		case r == '/':
			return Errorf(EInvalid, "invalid group id %q: '/' at byte %d is not allowed (ids travel in URL paths)", s, i)
		case unicode.IsSpace(r):
			return Errorf(EInvalid, "invalid group id %q: whitespace at byte %d is not allowed", s, i)
		case !unicode.IsPrint(r):
			return Errorf(EInvalid, "invalid group id %q: control or unprintable character %U at byte %d is not allowed", s, r, i)
		}
	}
	return nil
}

// Token names the operation that wrote a record: the original system's
// "timestamp" header. A conditional delete removes a record only if it holds
// the given token, so a rollback never removes what another operation wrote.
type Token string

// Record is one group record as held by one node.
type Record struct {
	ID    GroupID `json:"groupId"`
	Token Token   `json:"timestamp"`
}

// TokenSource makes operation tokens: decimal "seconds.micros" strings taken
// from a clock, strictly increasing within the process even when the clock
// stands still or steps back. The original server parses tokens as floats and
// accepts these. A TokenSource is safe for concurrent use.
type TokenSource struct {
	clock Clock
	mu    sync.Mutex
	last  int64 // microseconds since the epoch of the last token
}

// NewTokenSource returns a TokenSource reading clock (SystemClock if nil).
func NewTokenSource(clock Clock) *TokenSource {
	if clock == nil {
		clock = SystemClock{}
	}
	return &TokenSource{clock: clock}
}

// Next returns a token greater than every token this source returned before.
func (s *TokenSource) Next() Token {
	now := s.clock.Now().UnixMicro()
	s.mu.Lock()
	if now <= s.last {
		now = s.last + 1
	}
	s.last = now
	s.mu.Unlock()
	return Token(strconv.FormatInt(now/1e6, 10) + "." + fmt.Sprintf("%06d", now%1e6))
}
