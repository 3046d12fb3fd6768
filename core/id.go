package core

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
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
// stands still or steps back, and above every token it was told of with
// Observe. The original server parses tokens as floats and accepts these. A
// TokenSource is safe for concurrent use.
type TokenSource struct {
	clock Clock
	mu    sync.Mutex
	last  int64 // microseconds since the epoch of the last token
	floor int64 // the greatest token observed, in microseconds
}

// NewTokenSource returns a TokenSource reading clock (SystemClock if nil).
func NewTokenSource(clock Clock) *TokenSource {
	if clock == nil {
		clock = SystemClock{}
	}
	return &TokenSource{clock: clock}
}

// Next returns a token greater than every token this source returned before
// and every token it observed.
func (s *TokenSource) Next() Token {
	now := s.clock.Now().UnixMicro()
	s.mu.Lock()
	now = max(now, s.last+1, s.floor+1)
	s.last = now
	s.mu.Unlock()
	return microsToken(now)
}

// microsToken returns the token of us microseconds since the epoch:
// seconds, a dot and six digits of microseconds.
func microsToken(us int64) Token {
	frac := us % 1e6
	if frac < 0 {
		// Before 1970 (a test's clock), as fmt pads a negative number.
		return Token(strconv.FormatInt(us/1e6, 10) + "." + fmt.Sprintf("%06d", frac))
	}
	// On the stack, so that the token is the one allocation.
	b := strconv.AppendInt(make([]byte, 0, 32), us/1e6, 10)
	b = append(b, ".000000"...)
	for i := len(b) - 1; frac > 0; i-- {
		b[i] = byte('0' + frac%10)
		frac /= 10
	}
	return Token(b)
}

// Observe makes every later token of s greater than t: a token found in a
// journal or on a node, which a process whose clock is behind must not
// make again. Tokens that are not decimal numbers of seconds (see
// CompareTokens) cannot collide with s's and are ignored.
func (s *TokenSource) Observe(t Token) {
	us, ok := t.micros()
	if !ok {
		return
	}
	s.mu.Lock()
	s.floor = max(s.floor, us)
	s.mu.Unlock()
}

// CompareTokens orders tokens as the numbers of seconds they are: a
// decimal number with an optional fraction, as TokenSource makes them and
// the original's clients send them, compared to the microsecond; ties and
// tokens that are not such numbers (these sort first) compare bytewise. It
// returns -1, 0 or +1.
func CompareTokens(a, b Token) int {
	am, aok := a.micros()
	bm, bok := b.micros()
	switch {
	case aok && bok && am != bm:
		return cmp.Compare(am, bm)
	case aok != bok:
		if aok {
			return 1
		}
		return -1
	}
	return strings.Compare(string(a), string(b))
}

// micros returns t as whole microseconds, rounded down, if t is digits with
// an optional '.' and more digits, and fits.
func (t Token) micros() (int64, bool) {
	whole, frac, _ := strings.Cut(string(t), ".")
	if whole == "" || len(whole) > 12 || !allDigits(whole) || !allDigits(frac) {
		return 0, false
	}
	frac = (frac + "000000")[:6]
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return w*1e6 + f, true
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
