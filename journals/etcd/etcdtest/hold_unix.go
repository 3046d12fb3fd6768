//go:build unix

package etcdtest

import (
	"io"
	"net"
	"net/netip"
	"syscall"
)

// hold binds a TCP socket to addr without listening on it: connections to
// addr are refused, as to a stopped member, and no one else can take the
// port until the socket is closed.
func hold(addr string) (io.Closer, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "bind", Net: "tcp", Err: err}
	}
	return fdCloser(fd), nil
}

type fdCloser int

func (f fdCloser) Close() error { return syscall.Close(int(f)) }
