package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/reliable-ops/rops/core"
)

// ErrRefused is the class of the errors of an etcd that refused rops'
// credentials: its user name and password, its permissions, or its TLS
// certificates (or rops refused etcd's). Such an error has code
// core.EInvalid: retrying cannot help, the configuration must change.
var ErrRefused = errors.New("etcd refused the credentials")

// ErrAuthFailed is, with ErrRefused, the class of the error of an etcd
// that does not know the user, or not with that password.
var ErrAuthFailed = errors.New("etcd authentication failed")

// refusal returns the ErrRefused error that err, from a first request to
// etcd, is, or nil if err is none (etcd did not answer, say).
func refusal(opts Options, err error) error {
	at := strings.Join(opts.Endpoints, ",")
	var msg string
	var class error = ErrRefused
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrUserNotFound):
		class = errors.Join(ErrRefused, ErrAuthFailed)
		msg = fmt.Sprintf("etcd at %s refused user %s: unknown user or wrong password (%v): check the user name and the password", at, opts.Username, err)
	case errors.Is(err, rpctypes.ErrUserEmpty):
		msg = fmt.Sprintf("etcd at %s requires a user (its auth is enabled) (%v): give one, as etcd://USER@HOST:PORT/PREFIX with the password in ROPS_ETCD_PASSWORD, or a client certificate whose common name is the user", at, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		who := "rops"
		if opts.Username != "" {
			who = "user " + opts.Username
		}
		prefix := "/" + strings.Trim(opts.Prefix, "/") + "/"
		msg = fmt.Sprintf("etcd at %s refused %s the keys under %s (%v): grant its role read and write on them, such as with etcdctl role grant-permission ROLE --prefix=true readwrite %s", at, who, prefix, err, prefix)
	case errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrAuthOldRevision), errors.Is(err, rpctypes.ErrInvalidAuthMgmt):
		msg = fmt.Sprintf("etcd at %s refused rops' authentication (%v): check the user name and the password", at, err)
	default:
		return nil
	}
	return &core.Error{Code: core.EInvalid, Err: errors.Join(class, err), Message: msg}
}

// probeTLS does a TLS handshake with each endpoint, within ctx, until one
// accepts rops' and its certificate, and returns nil then, or if no
// endpoint answered at all (Open says they did not answer). Otherwise it
// returns an ErrRefused error naming what the handshake refused: gRPC
// retries a failed handshake in silence until its deadline, which would
// leave only "context deadline exceeded" to say.
//
// With TLS 1.3, a server refuses a client's certificate after the client
// sees the handshake done: so the probe also asks for etcd's /version over
// the connection, and reads the first byte of the answer or the refusal.
func probeTLS(ctx context.Context, opts Options) error {
	var refused error
	var at string
	for _, ep := range opts.Endpoints {
		err := probeOne(ctx, ep, opts.TLS)
		if err == nil {
			return nil
		}
		if refused == nil && !isNetError(err) {
			refused, at = err, ep
		}
	}
	if refused == nil {
		return nil
	}
	var fix string
	switch {
	case errors.As(refused, new(*tls.CertificateVerificationError)):
		fix = "give the CA that signed etcd's certificate with ?ca=FILE, and an address its certificate names"
	case strings.Contains(refused.Error(), "remote error"):
		fix = "etcd wants a client certificate signed by a CA it trusts (its --trusted-ca-file): give it with ?cert=FILE&key=FILE"
	default:
		fix = "check that etcd serves TLS there, and ?ca=, ?cert= and ?key="
	}
	return &core.Error{Code: core.EInvalid, Err: errors.Join(ErrRefused, refused),
		Message: fmt.Sprintf("TLS handshake with etcd at %s failed: %v: %s", at, refused, fix)}
}

func probeOne(ctx context.Context, ep string, cfg *tls.Config) error {
	host := ep
	if _, rest, ok := strings.Cut(ep, "://"); ok {
		host = rest
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer raw.Close()
	if deadline, ok := ctx.Deadline(); ok {
		raw.SetDeadline(deadline)
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			cfg.ServerName = h
		}
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(conn, "GET /version HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil // it answers slowly, but it took rops' certificate
	}
	return err
}

// speaksTLS reports whether some endpoint completes a TLS handshake
// within ctx (its certificate unchecked): for the error of a client
// without TLS that such an etcd does not answer.
func speaksTLS(ctx context.Context, opts Options) bool {
	for _, ep := range opts.Endpoints {
		//nolint:gosec // only to tell that it speaks TLS; nothing is sent
		err := probeOne(ctx, ep, &tls.Config{InsecureSkipVerify: true})
		if op, ok := errors.AsType[*net.OpError](err); err == nil || ok && op.Op == "remote error" {
			return true
		}
	}
	return false
}

// isNetError reports whether err is a failure to reach the endpoint, not
// a refusal of the TLS handshake.
func isNetError(err error) bool {
	op, ok := errors.AsType[*net.OpError](err)
	if ok && op.Op == "remote error" {
		return false
	}
	return ok || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
