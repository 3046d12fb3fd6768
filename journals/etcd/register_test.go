package etcd_test

import (
	"strings"
	"testing"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/plugins"
)

// TestOpenJournalInvalid checks the etcd:// URLs refused before any
// connection; those that connect are tested through the CLI.
func TestOpenJournalInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, url, want string
	}{
		{"no prefix", "etcd://127.0.0.1:2379", "no prefix: write etcd://HOST:PORT/PREFIX"},
		{"no address", "etcd:///rops", "no etcd address"},
		{"empty address", "etcd://127.0.0.1:2379,/rops", `empty etcd address in "127.0.0.1:2379,"`},
		{"bad ttl", "etcd://127.0.0.1:2379/rops?ttl=soon", "ttl=soon: give a positive duration such as 10s"},
		{"unknown setting", "etcd://127.0.0.1:2379/rops?colour=1s", `unknown setting "colour": etcd journals take cluster, ttl, dial_timeout and request_timeout`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugins.OpenJournal(t.Context(), tc.url, plugins.JournalEnv{Cluster: "c"})
			if got, want := core.ErrorCode(err), core.EInvalid; got != want {
				t.Fatalf("ErrorCode of %v=%q, want %q", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%q, want it to contain %q", err, tc.want)
			}
		})
	}
}
