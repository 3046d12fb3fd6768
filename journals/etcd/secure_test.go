package etcd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reliable-ops/rops/certs"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/journals/etcd/etcdtest"
)

// pkis returns a PKI for etcd and a second one, another CA's, for the
// attacks.
func pkis(t *testing.T) (pki, other certs.Files) {
	t.Helper()
	var err error
	if pki, err = certs.Generate(t.TempDir(), certs.Options{}); err != nil {
		t.Fatal(err)
	}
	if other, err = certs.Generate(t.TempDir(), certs.Options{}); err != nil {
		t.Fatal(err)
	}
	return pki, other
}

// clientTLS returns the TLS configuration of a client that trusts ca
// and, if cert is not empty, presents cert and key.
func clientTLS(t *testing.T, ca, cert, key string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool()}
	cfg.RootCAs.AppendCertsFromPEM(pem)
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// roundTrip begins, reads and finishes an intent through j, under its
// lock.
func roundTrip(t *testing.T, j *etcd.Journal) {
	t.Helper()
	ctx := context.Background()
	in := core.Intent{Op: core.OpCreate, ID: "x", Token: "1.000000", Nodes: []string{"n1"}}
	held, unlock, err := j.Locker().Lock(ctx, in.ID)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer unlock()
	if err := j.Begin(held, in); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if got, err := j.Pending(ctx); err != nil || len(got) != 1 || got[0].Token != in.Token {
		t.Fatalf("Pending=%+v %v, want the intent begun", got, err)
	}
	if err := j.Finish(held, in.Token); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if got, err := j.Pending(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Pending after Finish=%+v %v, want none", got, err)
	}
}

// refusedCase is an Open that etcd (or rops) must refuse: with an
// ErrRefused error of code EInvalid whose message says want.
type refusedCase struct {
	name string
	opts etcd.Options
	want string
}

func checkRefused(t *testing.T, eps []string, cases []refusedCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Endpoints, tc.opts.Prefix, tc.opts.Cluster = eps, "rops-test", "c1"
			j, err := etcd.Open(context.Background(), tc.opts)
			if err == nil {
				j.Close()
				t.Fatalf("Open succeeded, want it refused: %s", tc.want)
			}
			if !errors.Is(err, etcd.ErrRefused) || core.ErrorCode(err) != core.EInvalid {
				t.Fatalf("Open: %v (code %s), want an ErrRefused error, code %s", err, core.ErrorCode(err), core.EInvalid)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %q, want it to say %q", err, tc.want)
			}
			if tc.opts.Password != "" && strings.Contains(err.Error(), tc.opts.Password) {
				t.Fatalf("Open: %q shows the password", err)
			}
		})
	}
}

// TestJournalMutualTLS: over TLS with a client certificate etcd trusts,
// the journal works; with a wrong CA for etcd, without a client
// certificate, with another CA's, or without TLS, Open fails at once
// saying what the handshake refused, not only that etcd did not answer.
func TestJournalMutualTLS(t *testing.T) {
	pki, other := pkis(t)
	eps := etcdtest.StartOptions(t, 1, etcdtest.Options{TLS: &pki, ClientCertAuth: true}).Endpoints()
	testMutualTLS(t, eps, pki, other)
}

// wantsClientCert is the refusal of a client certificate, which etcd
// gives as "remote error: tls: certificate required", "... unknown
// certificate authority" or, built with an older Go, "... bad
// certificate".
const wantsClientCert = "etcd wants a client certificate signed by a CA it trusts (its --trusted-ca-file): give it with ?cert=FILE&key=FILE"

func testMutualTLS(t *testing.T, eps []string, pki, other certs.Files) {
	t.Run("trusted", func(t *testing.T) {
		j, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, Prefix: "rops-test", Cluster: "c1",
			TLS: clientTLS(t, pki.CA, pki.ClientCert, pki.ClientKey)})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()
		roundTrip(t, j)
	})
	checkRefused(t, eps, []refusedCase{
		{"wrong CA for etcd", etcd.Options{TLS: clientTLS(t, other.CA, pki.ClientCert, pki.ClientKey)},
			"TLS handshake with etcd at " + eps[0] + " failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"no client certificate", etcd.Options{TLS: clientTLS(t, pki.CA, "", "")},
			wantsClientCert},
		{"another CA's client certificate", etcd.Options{TLS: clientTLS(t, pki.CA, other.ClientCert, other.ClientKey)},
			wantsClientCert},
		{"no TLS", etcd.Options{DialTimeout: time.Second},
			"etcd at " + eps[0] + " speaks TLS only, and rops spoke without: give the CA that signed its certificate with ?ca=FILE"},
	})
}

// authUsers are the users of an etcd with auth: rops may read and write
// the journal's keys, reader only read them, nobody nothing.
var authUsers = []etcdtest.User{
	{Name: "rops", Password: "rops-secret", Prefix: "/rops-test/"},
	{Name: "reader", Password: "reader-secret", Prefix: "/rops-test/", ReadOnly: true},
	{Name: "nobody", Password: "nobody-secret"},
}

// TestJournalAuth: with auth on, the journal works as a user whose role
// may read and write its prefix; a wrong password, an unknown user, no
// user, or a user without that permission fail Open saying so.
func TestJournalAuth(t *testing.T) {
	c := etcdtest.Start(t, 1)
	c.EnableAuth(authUsers...)
	testAuth(t, c.Endpoints())
}

func testAuth(t *testing.T, eps []string) {
	t.Run("granted", func(t *testing.T) {
		j, err := etcd.Open(context.Background(), etcd.Options{Endpoints: eps, Prefix: "rops-test", Cluster: "c1", Username: "rops", Password: "rops-secret"})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer j.Close()
		roundTrip(t, j)
	})
	checkRefused(t, eps, []refusedCase{
		{"wrong password", etcd.Options{Username: "rops", Password: "wrong-secret"},
			"etcd at " + eps[0] + " refused user rops: unknown user or wrong password (etcdserver: authentication failed, invalid user ID or password): check the user name and the password"},
		{"unknown user", etcd.Options{Username: "mallory", Password: "rops-secret"},
			"refused user mallory: unknown user or wrong password"},
		{"no user", etcd.Options{},
			"etcd at " + eps[0] + " requires a user (its auth is enabled)"},
		{"no permission", etcd.Options{Username: "nobody", Password: "nobody-secret"},
			"etcd at " + eps[0] + " refused user nobody the keys under /rops-test/ (etcdserver: permission denied): grant its role read and write on them"},
		{"read only", etcd.Options{Username: "reader", Password: "reader-secret"},
			"etcd at " + eps[0] + " refused user reader the keys under /rops-test/ (etcdserver: permission denied): grant its role read and write on them"},
	})
}
