//go:build !unix

package etcdtest

import (
	"errors"
	"io"
)

// hold is not done here: a stopped member's ports stay free.
func hold(string) (io.Closer, error) { return nil, errors.New("not supported") }
