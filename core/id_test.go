package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestParseGroupID(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		msg  string // substring of the error; "" means valid
	}{
		{"simple", "g1", ""},
		{"one byte", "a", ""},
		{"punctuation", "a-b_c.d:e@f+g", ""},
		{"unicode letters", "héllo-日本", ""},
		{"emoji", "party😀", ""},
		{"128 bytes", strings.Repeat("x", 128), ""},
		{"128 bytes of 2-byte runes", strings.Repeat("é", 64), ""},
		{"empty", "", "it is empty"},
		{"129 bytes", strings.Repeat("x", 129), "it is 129 bytes long, the limit is 128"},
		{"130 bytes of 2-byte runes", strings.Repeat("é", 65), "it is 130 bytes long, the limit is 128"},
		{"invalid UTF-8", "a\xffb", "it is not valid UTF-8"},
		{"slash", "a/b", "'/' at byte 1 is not allowed"},
		{"space", "a b", "whitespace at byte 1 is not allowed"},
		{"leading tab", "\tab", "whitespace at byte 0 is not allowed"},
		{"newline", "ab\n", "whitespace at byte 2 is not allowed"},
		{"no-break space", "a\u00a0b", "whitespace at byte 1 is not allowed"},
		{"NUL", "a\x00b", "control or unprintable character U+0000 at byte 1"},
		{"DEL", "ab\x7f", "control or unprintable character U+007F at byte 2"},
		{"zero width space", "a\u200bb", "control or unprintable character U+200B at byte 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ParseGroupID(tc.in)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("ParseGroupID(%q): %v", tc.in, err)
				}
				if got, want := id, GroupID(tc.in); got != want {
					t.Fatalf("id=%q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseGroupID(%q) = %q, want an error", tc.in, id)
			}
			if got, want := id, GroupID(""); got != want {
				t.Errorf("id=%q on error, want %q", got, want)
			}
			if got, want := ErrorCode(err), EInvalid; got != want {
				t.Errorf("code=%v, want %v", got, want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err=%v is not ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "invalid group id") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err=%q, want it to say %q", err, tc.msg)
			}
			if got, want := GroupID(tc.in).Validate(), err; got.Error() != want.Error() {
				t.Errorf("Validate=%v, want %v", got, want)
			}
		})
	}
}

// checkIDRules fails if id breaks a rule ParseGroupID promises.
func checkIDRules(t *testing.T, id string) {
	t.Helper()
	if len(id) < 1 || len(id) > MaxGroupIDLen {
		t.Fatalf("accepted %q of %d bytes", id, len(id))
	}
	if !utf8.ValidString(id) {
		t.Fatalf("accepted invalid UTF-8 %q", id)
	}
	for i, r := range id {
		if r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			t.Fatalf("accepted %q with %U at byte %d", id, r, i)
		}
	}
}

func FuzzParseGroupID(f *testing.F) {
	for _, s := range []string{"", "g1", "a/b", "a b", "\x00", "\xff", "日本", "\u200b",
		strings.Repeat("x", 128), strings.Repeat("x", 129), strings.Repeat("é", 65), "..", "%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseGroupID(s)
		if err != nil {
			if ErrorCode(err) != EInvalid || id != "" || !strings.HasPrefix(err.Error(), "invalid group id") {
				t.Fatalf("ParseGroupID(%q) = %q, %v: want \"\" and an EInvalid error", s, id, err)
			}
			return
		}
		if string(id) != s {
			t.Fatalf("ParseGroupID(%q) = %q", s, id)
		}
		checkIDRules(t, s)
	})
}

// manualClock is a Clock that moves only when told to.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.set(c.Now().Add(d))
	return ctx.Err()
}

func (c *manualClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var tokenFormat = regexp.MustCompile(`^[0-9]+\.[0-9]{6}$`)

// micros parses a token back to microseconds since the epoch.
func micros(t *testing.T, tok Token) int64 {
	t.Helper()
	if !tokenFormat.MatchString(string(tok)) {
		t.Fatalf("token %q is not seconds.micros with 6 digits", tok)
	}
	sec, frac, _ := strings.Cut(string(tok), ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	u, _ := strconv.ParseInt(frac, 10, 64)
	return s*1e6 + u
}

func TestTokenSource(t *testing.T) {
	clock := &manualClock{now: time.Unix(1700000000, 123456789)}
	ts := NewTokenSource(clock)
	var got []Token
	got = append(got, ts.Next(), ts.Next()) // clock stands still
	clock.set(time.Unix(1699999990, 0))     // steps back 10 s
	got = append(got, ts.Next())
	clock.set(time.Unix(1700000001, 42000)) // moves on: the clock's own time again
	got = append(got, ts.Next())
	want := []Token{"1700000000.123456", "1700000000.123457", "1700000000.123458", "1700000001.000042"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tokens=%v, want %v", got, want)
	}
}

func TestTokenSourceFormat(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want Token
	}{
		{time.Unix(5, 0), "5.000000"},
		{time.Unix(5, 1000), "5.000001"},
		{time.Unix(5, 999999999), "5.999999"},
		{time.Unix(1732550400, 500000000), "1732550400.500000"},
	} {
		if got := NewTokenSource(&manualClock{now: tc.at}).Next(); got != tc.want {
			t.Errorf("token at %v=%q, want %q", tc.at, got, tc.want)
		}
	}
	if tok := NewTokenSource(nil).Next(); !tokenFormat.MatchString(string(tok)) {
		t.Errorf("token from the system clock %q is not seconds.micros", tok)
	}
	// The format is fmt's seconds, dot, %06d of the micros: tokens made by
	// older versions compare with these as strings too (ties).
	for _, us := range []int64{0, 1, 999_999, 1_000_000, 1_000_001, 1_633_806_680_426_599, -1, -999_999, -1_000_000, -1_000_005, math.MaxInt64, math.MinInt64} {
		want := Token(strconv.FormatInt(us/1e6, 10) + "." + fmt.Sprintf("%06d", us%1e6))
		if got := microsToken(us); got != want {
			t.Errorf("token of %d us=%q, want %q", us, got, want)
		}
	}
}

func TestTokenSourceConcurrent(t *testing.T) {
	ts := NewTokenSource(&manualClock{now: time.Unix(1700000000, 0)})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	seqs := make([][]Token, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				seqs[w] = append(seqs[w], ts.Next())
			}
		})
	}
	wg.Wait()
	seen := map[Token]bool{}
	for _, seq := range seqs {
		for i, tok := range seq {
			if seen[tok] {
				t.Fatalf("token %s given twice", tok)
			}
			seen[tok] = true
			if i > 0 && micros(t, tok) <= micros(t, seq[i-1]) {
				t.Fatalf("token %s after %s in one goroutine", tok, seq[i-1])
			}
		}
	}
	if got, want := len(seen), workers*each; got != want {
		t.Fatalf("%d tokens, want %d", got, want)
	}
}
