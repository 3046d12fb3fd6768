package cli

import (
	"net/http"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/reliable-ops/rops/drivers/httpapi"
)

// defaultRemote is where the remote target's nodes are unless --remote
// says otherwise: rops serve's default address.
const defaultRemote = "http://127.0.0.1:8080/v1"

// remoteURL is the --remote flag: the base URL of the server whose nodes
// node01..03 are the remote target. It is checked as it is parsed, so a
// bad one is a usage error before any command runs.
type remoteURL string

// Decode reads and checks the URL: http or https, a host, and no query,
// fragment or user, as the HTTP nodes take it.
func (r *remoteURL) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("URL", &s); err != nil {
		return err
	}
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if _, err := httpapi.NewClient(s, "node01", httpapi.ClientOptions{HTTP: http.DefaultClient}); err != nil {
		return err
	}
	*r = remoteURL(s)
	return nil
}

// remoteNodes are the node specs of the remote target at base.
func remoteNodes(base string) []string {
	if base == "" {
		base = defaultRemote
	}
	return []string{base + "?node=node01", base + "?node=node02", base + "?node=node03"}
}
