package etcd_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliable-ops/rops/certs"
	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/journals/etcd"
	"github.com/reliable-ops/rops/plugins"
)

// TestOpenJournalInvalid checks the etcd:// URLs refused before any
// connection; those that connect are tested through the CLI.
func TestOpenJournalInvalid(t *testing.T) {
	t.Setenv(etcd.PasswordEnv, "")
	dir := t.TempDir()
	pki, err := certs.Generate(filepath.Join(dir, "pki"), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, url, want string
	}{
		{"no prefix", "etcd://127.0.0.1:2379", "no prefix: write etcd://HOST:PORT/PREFIX"},
		{"no address", "etcd:///rops", "no etcd address"},
		{"empty address", "etcd://127.0.0.1:2379,/rops", `empty etcd address in "127.0.0.1:2379,"`},
		{"bad ttl", "etcd://127.0.0.1:2379/rops?ttl=soon", "ttl=soon: give a positive duration such as 10s"},
		{"unknown setting", "etcd://127.0.0.1:2379/rops?colour=1s", `unknown setting "colour": etcd journals take cluster, ttl, dial_timeout, request_timeout, ca, cert, key and password_file`},
		{"password in the URL", "etcd://rops:s3cret@127.0.0.1:2379/rops", "a password in the journal URL would land in shell history, process lists and logs: write etcd://USER@HOST:PORT/PREFIX and give the password in ROPS_ETCD_PASSWORD or a file named by ?password_file=FILE"},
		{"empty user", "etcd://@127.0.0.1:2379/rops", "an empty etcd user before '@'"},
		{"user without a password", "etcd://rops@127.0.0.1:2379/rops", "etcd user rops has no password: set ROPS_ETCD_PASSWORD, or give ?password_file=FILE"},
		{"password file missing", "etcd://rops@127.0.0.1:2379/rops?password_file=" + missing, "password_file=" + missing + ": no such file or directory: give a file that holds etcd user rops's password"},
		{"password file empty", "etcd://rops@127.0.0.1:2379/rops?password_file=" + empty, "password_file=" + empty + " is empty"},
		{"password file without a user", "etcd://127.0.0.1:2379/rops?password_file=" + empty, "password_file without a user"},
		{"empty ca", "etcd://127.0.0.1:2379/rops?ca=", "ca= is empty: give a file"},
		{"ca missing", "etcd://127.0.0.1:2379/rops?ca=" + missing, "ca=" + missing + ": no such file or directory: give the PEM file of the CA that signed etcd's certificate"},
		{"ca not PEM", "etcd://127.0.0.1:2379/rops?ca=" + empty, "ca=" + empty + " holds no PEM certificate"},
		{"cert without key", "etcd://127.0.0.1:2379/rops?cert=" + pki.ClientCert, "cert=" + pki.ClientCert + " without key=: give the client certificate's private key too"},
		{"key without cert", "etcd://127.0.0.1:2379/rops?ca=" + pki.CA + "&key=" + pki.ClientKey, "key=" + pki.ClientKey + " without cert=: give the client certificate too"},
		{"key missing", "etcd://127.0.0.1:2379/rops?cert=" + pki.ClientCert + "&key=" + missing, missing + ": no such file or directory"},
		{"key of another certificate", "etcd://127.0.0.1:2379/rops?cert=" + pki.ClientCert + "&key=" + pki.ServerKey, "private key does not match public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugins.OpenJournal(t.Context(), tc.url, plugins.JournalEnv{Cluster: "c"})
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("ErrorCode of %v=%q, want %q", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err=%q shows the password", err)
			}
		})
	}
}

// TestParseURL checks what a journal URL gives Open: its user, the
// password from the environment or from password_file (which wins), and
// TLS from any of ca, cert and key.
func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	pki, err := certs.Generate(filepath.Join(dir, "pki"), certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(key string) string { return map[string]string{etcd.PasswordEnv: "from-env"}[key] }
	parse := func(raw string) etcd.Options {
		t.Helper()
		u, err := plugins.ParseJournalURL(raw)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := etcd.ParseURL(u, "c", env)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return opts
	}
	opts := parse("etcd://rops@a:1,b:2/p")
	if got, want := strings.Join(opts.Endpoints, " "), "a:1 b:2"; got != want {
		t.Errorf("Endpoints=%q, want %q", got, want)
	}
	if opts.Username != "rops" || opts.Password != "from-env" || opts.TLS != nil {
		t.Errorf("user %q password %q TLS %v, want rops, from-env (ROPS_ETCD_PASSWORD's), no TLS", opts.Username, opts.Password, opts.TLS)
	}
	if opts = parse("etcd://rops@a:1/p?password_file=" + pwFile); opts.Password != "from-file" {
		t.Errorf("with password_file and ROPS_ETCD_PASSWORD, password %q, want the file's, without its newline", opts.Password)
	}
	if opts = parse("etcd://a:1/p"); opts.Username != "" || opts.Password != "" {
		t.Errorf("without a user: user %q password %q, want none (ROPS_ETCD_PASSWORD is for a user)", opts.Username, opts.Password)
	}
	if opts = parse("etcd://a:1/p?ca=" + pki.CA); opts.TLS == nil || opts.TLS.RootCAs == nil || len(opts.TLS.Certificates) != 0 {
		t.Errorf("ca= alone: TLS %+v, want TLS with the CA and no client certificate", opts.TLS)
	}
	if opts = parse("etcd://a:1/p?cert=" + pki.ClientCert + "&key=" + pki.ClientKey); opts.TLS == nil || opts.TLS.RootCAs != nil || len(opts.TLS.Certificates) != 1 {
		t.Errorf("cert= and key=: TLS %+v, want TLS with the client certificate, verifying etcd with the system's roots", opts.TLS)
	}
}

// FuzzJournalURL checks that no etcd:// URL makes the parser panic, that
// every URL it takes has an address and a prefix, and that its errors never
// show a password written in the URL.
func FuzzJournalURL(f *testing.F) {
	for _, s := range []string{
		"etcd://127.0.0.1:2379/rops",
		"etcd://a:1,b:2/p?ttl=2s&dial_timeout=1s&request_timeout=3s&cluster=x",
		"etcd://rops@127.0.0.1:2379/rops",
		"etcd://rops:pass@127.0.0.1:2379/rops",
		"etcd://u:p@a@h:1/p",
		"etcd://h:1/p?ca=&cert=x",
		"etcd://h:1/p?password_file=",
		"etcd://%zz@h/p",
		"etcd://h/p?ttl=%zz",
	} {
		f.Add(s)
	}
	env := func(string) string { return "pw" }
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := plugins.ParseJournalURL(raw)
		if err != nil {
			return
		}
		for _, key := range []string{"ca", "cert", "key", "password_file"} {
			if u.Query().Get(key) != "" {
				t.Skip("names a file, which may be any (/dev/zero)")
			}
		}
		_, hasPassword := u.User.Password()
		opts, err := etcd.ParseURL(u, "c", env)
		if hasPassword {
			// The error says the same whatever the password.
			other := *u
			other.User = url.UserPassword(u.User.Username(), "another password")
			_, err2 := etcd.ParseURL(&other, "c", env)
			if err == nil || err2 == nil || err.Error() != err2.Error() {
				t.Fatalf("%q: error %v, and with another password %v: want one error that does not depend on it", raw, err, err2)
			}
		}
		if err != nil {
			return
		}
		if hasPassword {
			t.Fatalf("%q: taken with a password in it", raw)
		}
		if len(opts.Endpoints) == 0 || opts.Prefix == "" || strings.HasPrefix(opts.Prefix, "/") {
			t.Fatalf("%q: taken as %+v, without an address or a prefix", raw, opts)
		}
		for _, ep := range opts.Endpoints {
			if ep == "" {
				t.Fatalf("%q: taken with an empty address", raw)
			}
		}
		if opts.Username != "" && opts.Password == "" {
			t.Fatalf("%q: user %q without a password", raw, opts.Username)
		}
	})
}
