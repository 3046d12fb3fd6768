package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{"message", &Error{Code: ENotFound, Message: "no group g1"}, "no group g1"},
		{"cause only", &Error{Code: ETransient, Err: io.EOF}, "transient: EOF"},
		{"code only", &Error{Code: EExists}, "exists"},
		{"errorf", Errorf(ERejected, "node %s said %d", "node01", 406).(*Error), "node node01 said 406"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("Error()=%q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), EInternal},
		{"context", context.DeadlineExceeded, EInternal},
		{"sentinel", ErrExists, EExists},
		{"errorf", Errorf(ENotFound, "gone"), ENotFound},
		{"wrapped", fmt.Errorf("node02: %w", Errorf(EUnavailable, "refused")), EUnavailable},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrRejected)), ERejected},
		{"joined", errors.Join(errors.New("x"), ErrTransient), ETransient},
		{"first in chain wins", &Error{Code: ETransient, Err: ErrExists}, ETransient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorCode(tc.err); got != tc.want {
				t.Fatalf("ErrorCode=%q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorIs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"sentinel itself", ErrExists, ErrExists, true},
		{"same class", Errorf(EExists, "g1 exists on node02"), ErrExists, true},
		{"other class", Errorf(EExists, "g1 exists"), ErrNotFound, false},
		{"with a cause", &Error{Code: ENotFound, Message: "no", Err: io.EOF}, ErrNotFound, true},
		{"overloaded", &Error{Code: ETransient, Overloaded: true}, ErrTransient, true},
		{"a sentinel with fields set is no sentinel", Errorf(ETransient, "busy"), &Error{Code: ETransient, Overloaded: true}, false},
		{"wrapped", fmt.Errorf("create: %w", Errorf(ERejected, "406")), ErrRejected, true},
		{"wrapped in exhausted retries", fmt.Errorf("%w (retries exhausted)", ErrTransient), ErrTransient, true},
		{"cause through Errorf's %w", Errorf(ETransient, "read: %w", io.ErrUnexpectedEOF), io.ErrUnexpectedEOF, true},
		{"class through a cause", &Error{Code: EInternal, Err: ErrUnavailable}, ErrUnavailable, true},
		{"non-sentinel target matches only itself", Errorf(EExists, "a"), &Error{Code: EExists, Message: "a"}, false},
		{"plain error", errors.New("exists"), ErrExists, false},
		{"each sentinel is its class only", ErrInvalid, ErrRejected, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v)=%v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
	var e *Error
	if !errors.As(fmt.Errorf("x: %w", &Error{Code: ETransient, RetryAfter: time.Second}), &e) || e.RetryAfter != time.Second {
		t.Fatalf("errors.As did not find the *Error with its RetryAfter: %v", e)
	}
}

func TestRetryableAndAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		err                  error
		retryable, ambiguous bool
	}{
		{nil, false, false},
		{ErrTransient, true, true},
		{ErrUnavailable, true, false},
		{ErrRejected, false, false},
		{ErrExists, false, false},
		{ErrNotFound, false, false},
		{ErrInvalid, false, false},
		{errors.New("disk on fire"), true, true},
		{fmt.Errorf("%w (retries exhausted)", Errorf(ETransient, "500")), true, true},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := IsRetryable(tc.err); got != tc.retryable {
				t.Errorf("IsRetryable=%v, want %v", got, tc.retryable)
			}
			if got := IsAmbiguous(tc.err); got != tc.ambiguous {
				t.Errorf("IsAmbiguous=%v, want %v", got, tc.ambiguous)
			}
		})
	}
}
