package nemesis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/reliable-ops/rops/decorators/faults"
)

// Admin is the Switch of a node of a rops serve started with --admin: GET
// and PUT /admin/faults. It is safe for concurrent use.
type Admin struct {
	// URL is the server's base URL, such as http://127.0.0.1:8080/v1 (the
	// admin API is served at the root and under /v1).
	URL  string
	Node string
	// HTTP is the client that calls it; nil, http.DefaultClient. Give it
	// a timeout: a paused server never answers.
	HTTP *http.Client
	// Token, if not empty, is sent as "Authorization: Bearer <Token>":
	// the admin token of a server started with one.
	Token string
}

// The errors of an admin call the server answered 401, with no token
// sent or with a wrong one; an Admin's error wraps them.
var (
	ErrNoAdminToken    = errors.New("the server wants an admin token: give it with --admin-token-file or ROPS_ADMIN_TOKEN")
	ErrWrongAdminToken = errors.New("the server refused the admin token: give the one rops serve was given, with --admin-token-file or ROPS_ADMIN_TOKEN")
)

// AdminTokenError returns the error of an admin call answered 401:
// ErrNoAdminToken if sent is false, else ErrWrongAdminToken.
func AdminTokenError(sent bool) error {
	if sent {
		return ErrWrongAdminToken
	}
	return ErrNoAdminToken
}

var _ Switch = (*Admin)(nil)

// Faults returns the node's faults, as GET /admin/faults says. It returns
// an error if the server has no admin API or no such faulty node.
func (a *Admin) Faults(ctx context.Context) (faults.Faults, error) {
	all, err := a.do(ctx, http.MethodGet, nil)
	if err != nil {
		return faults.Faults{}, err
	}
	f, ok := all[a.Node]
	if !ok {
		return faults.Faults{}, fmt.Errorf("%s/admin/faults has no node %s", a.URL, a.Node)
	}
	return f, nil
}

// Patch sets the faults patch names with PUT /admin/faults, the others
// staying as they are.
func (a *Admin) Patch(ctx context.Context, patch map[string]any) error {
	_, err := a.do(ctx, http.MethodPut, map[string]any{a.Node: patch})
	return err
}

// do calls the admin API and returns every node's faults, as it answers.
func (a *Admin) do(ctx context.Context, method string, body any) (map[string]faults.Faults, error) {
	url := strings.TrimRight(a.URL, "/") + "/admin/faults"
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("%s %s: %s: %w", method, url, resp.Status, AdminTokenError(a.Token != ""))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s (is the server started with --admin?)", method, url, resp.Status, bytes.TrimSpace(data))
	}
	var all map[string]faults.Faults
	if err := json.Unmarshal(data, &all); err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	return all, nil
}

// Local is the Switch of a node whose faults are in this process, such
// as a local target's. It is safe for concurrent use if the node is.
type Local struct{ Node *faults.Node }

var _ Switch = Local{}

// Faults returns the node's faults.
func (l Local) Faults(context.Context) (faults.Faults, error) { return l.Node.Faults(), nil }

// Patch sets the faults patch names over the others, as PUT /admin/faults
// does, and returns an error if they are not valid.
func (l Local) Patch(_ context.Context, patch map[string]any) error {
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	f := l.Node.Faults()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	return l.Node.SetFaults(f)
}
