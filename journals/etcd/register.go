package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// The driver registers itself, as litestream's backends do, so that only a
// program that imports this package links the etcd client.
func init() {
	plugins.RegisterJournal("etcd", openURL)
}

// PasswordEnv is the environment variable that holds the password of the
// user of an etcd:// journal URL, unless its password_file is given.
const PasswordEnv = "ROPS_ETCD_PASSWORD"

// openURL opens etcd://[USER@]HOST:PORT[,HOST:PORT...]/PREFIX[?ttl=10s&dial_timeout=5s&cluster=NAME&ca=FILE&cert=FILE&key=FILE&password_file=FILE]:
// the cluster's intents under /PREFIX/CLUSTER/ in that etcd (CLUSTER the
// identity of the nodes' addresses, or NAME), and its locks on a lease of
// ttl.
func openURL(ctx context.Context, u *url.URL, env plugins.JournalEnv) (plugins.Journal, error) {
	opts, err := parseURL(u, env.Cluster, os.Getenv)
	if err != nil {
		return plugins.Journal{}, err
	}
	j, err := Open(ctx, opts)
	if errors.Is(err, ErrAuthFailed) {
		// Say where the password came from.
		ce, _ := errors.AsType[*core.Error](err)
		from := PasswordEnv
		if f := u.Query().Get("password_file"); f != "" {
			from = "the file " + f
		}
		err = &core.Error{Code: ce.Code, Err: err, Message: ce.Message + " (rops sent " + from + "'s)"}
	}
	if err != nil {
		return plugins.Journal{}, err
	}
	return plugins.Journal{Journal: j, Locks: j.Locker(), Closer: j}, nil
}

// parseURL returns the Options of the journal u names for cluster, with
// getenv reading the environment. It reads the files u names (password,
// certificates), and connects to nothing.
func parseURL(u *url.URL, cluster string, getenv func(string) string) (Options, error) {
	if u.Host == "" {
		return Options{}, core.Errorf(core.EInvalid, "no etcd address: write etcd://HOST:PORT[,HOST:PORT...]/PREFIX")
	}
	var opts Options
	if u.User != nil {
		opts.Username = u.User.Username()
		if _, ok := u.User.Password(); ok {
			return Options{}, core.Errorf(core.EInvalid, "a password in the journal URL would land in shell history, process lists and logs: write etcd://USER@HOST:PORT/PREFIX and give the password in %s or a file named by ?password_file=FILE", PasswordEnv)
		}
		if opts.Username == "" {
			return Options{}, core.Errorf(core.EInvalid, "an empty etcd user before '@': write etcd://USER@HOST:PORT/PREFIX, or leave out the '@'")
		}
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix == "" {
		return Options{}, core.Errorf(core.EInvalid, "no prefix: write etcd://HOST:PORT/PREFIX, such as etcd://127.0.0.1:2379/rops")
	}
	opts.Endpoints, opts.Prefix, opts.Cluster = strings.Split(u.Host, ","), prefix, cluster
	q := u.Query()
	if c := q.Get("cluster"); c != "" {
		// Machines that reach the nodes by other addresses name the
		// cluster so, to share its journal.
		opts.Cluster = c
	}
	files := map[string]string{}
	for _, key := range []string{"ca", "cert", "key", "password_file"} {
		if q.Has(key) {
			if files[key] = q.Get(key); files[key] == "" {
				return Options{}, core.Errorf(core.EInvalid, "%s= is empty: give a file, such as %s=/etc/rops/etcd-%s.pem", key, key, key)
			}
		}
		q.Del(key)
	}
	q.Del("cluster")
	for key, vs := range q {
		var d time.Duration
		var err error
		if len(vs) > 0 {
			d, err = time.ParseDuration(vs[0])
		}
		if err != nil || d <= 0 {
			return Options{}, core.Errorf(core.EInvalid, "%s=%s: give a positive duration such as 10s", key, strings.Join(vs, ","))
		}
		switch key {
		case "ttl":
			opts.TTL = d
		case "dial_timeout":
			opts.DialTimeout = d
		case "request_timeout":
			opts.RequestTimeout = d
		default:
			return Options{}, core.Errorf(core.EInvalid, "unknown setting %q: etcd journals take cluster, ttl, dial_timeout, request_timeout, ca, cert, key and password_file", key)
		}
	}
	for _, ep := range opts.Endpoints {
		if ep == "" {
			return Options{}, core.Errorf(core.EInvalid, "empty etcd address in %q", u.Host)
		}
	}
	if opts.Username != "" {
		// The file, named in this very URL, wins over the environment.
		if f := files["password_file"]; f != "" {
			data, err := os.ReadFile(f)
			if err != nil {
				return Options{}, core.Errorf(core.EInvalid, "password_file=%s: %v: give a file that holds etcd user %s's password", f, unwrapPath(err), opts.Username)
			}
			opts.Password = strings.TrimRight(string(data), "\r\n")
			if opts.Password == "" {
				return Options{}, core.Errorf(core.EInvalid, "password_file=%s is empty: write etcd user %s's password in it", f, opts.Username)
			}
		} else if opts.Password = getenv(PasswordEnv); opts.Password == "" {
			return Options{}, core.Errorf(core.EInvalid, "etcd user %s has no password: set %s, or give ?password_file=FILE", opts.Username, PasswordEnv)
		}
	} else if files["password_file"] != "" {
		return Options{}, core.Errorf(core.EInvalid, "password_file without a user: write etcd://USER@HOST:PORT/PREFIX?password_file=FILE")
	}
	var err error
	if opts.TLS, err = tlsConfig(files["ca"], files["cert"], files["key"]); err != nil {
		return Options{}, err
	}
	return opts, nil
}

// tlsConfig returns the TLS configuration of ca, cert and key (file
// names; any of them turns TLS on), or nil if none is given. Without ca,
// the system's roots verify etcd.
func tlsConfig(ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, core.Errorf(core.EInvalid, "ca=%s: %v: give the PEM file of the CA that signed etcd's certificate", ca, unwrapPath(err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, core.Errorf(core.EInvalid, "ca=%s holds no PEM certificate: give the PEM file of the CA that signed etcd's certificate", ca)
		}
	}
	switch {
	case cert != "" && key == "":
		return nil, core.Errorf(core.EInvalid, "cert=%s without key=: give the client certificate's private key too, as &key=FILE", cert)
	case key != "" && cert == "":
		return nil, core.Errorf(core.EInvalid, "key=%s without cert=: give the client certificate too, as &cert=FILE", key)
	case cert != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, core.Errorf(core.EInvalid, "cert=%s, key=%s: %v: give a PEM certificate and its private key", cert, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// unwrapPath returns the cause of a *os.PathError (its message names the
// file, and so does ours).
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return pe.Err
	}
	return err
}
