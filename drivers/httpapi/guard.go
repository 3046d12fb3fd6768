package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
)

// DefaultMaxHeaderBytes is the limit rops serve puts on a request's
// headers (http.Server.MaxHeaderBytes), well above what any client of the
// API sends and far below net/http's default of 1 MiB: a larger header is
// answered 431 before any handler runs.
const DefaultMaxHeaderBytes = 64 << 10

// HostCheck is the check a Server makes of every request's Host and
// Origin headers (ServerOptions.HostCheck), against DNS rebinding and
// cross-site requests from web pages:
//
//   - A request whose Host is not a name of the server answers 403. The
//     names are the loopback ones (localhost, 127.0.0.0/8, ::1), the
//     host of Listen, any IP address if Listen's host is unspecified
//     (0.0.0.0, :: or empty: every address of the machine), the original
//     system's node names (node<N>.app.internal.com) and Allowed. A
//     request without a Host (HTTP/1.0) passes: browsers always send one.
//   - A request to a write route (POST or DELETE /group, POST /batch) or
//     to the admin API whose Origin header is not the server's own origin
//     (the scheme, then Host), or whose Sec-Fetch-Site says it comes from
//     another site, answers 403: a web page may not change the nodes or
//     their faults. Clients that are not browsers send neither header.
//     Reads stay open, as a browser does not let another site's page read
//     their answers.
type HostCheck struct {
	// Listen is the address the server listens on, as host:port.
	Listen string
	// Allowed are further host names (without a port), compared without
	// regard to case; "*" allows every Host.
	Allowed []string
}

// originalHost matches the original system's node names.
var originalHost = regexp.MustCompile(`^node[0-9]+\.app\.internal\.com$`)

// hostPolicy is a HostCheck ready to use.
type hostPolicy struct {
	any    bool // "*" is allowed
	anyIP  bool // the listen address is unspecified
	names  map[string]bool
	listen netip.Addr // the listen address's IP, if it is one
	// last is the last Host header allowed: a client sends the same one
	// with every request, and the policy never changes.
	last atomic.Pointer[string]
}

func newHostPolicy(c *HostCheck) *hostPolicy {
	p := &hostPolicy{names: map[string]bool{"localhost": true}}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		host = c.Listen
	}
	host = normHost(host)
	if ip, err := netip.ParseAddr(host); err == nil {
		p.listen = ip.Unmap()
		p.anyIP = ip.IsUnspecified()
	} else if host == "" {
		p.anyIP = true
	} else {
		p.names[host] = true
	}
	for _, n := range c.Allowed {
		n = normHost(n)
		if n == "*" {
			p.any = true
		}
		if n != "" {
			p.names[n] = true
		}
	}
	return p
}

// normHost returns a host name as hosts compare: lower case, without the
// brackets of an IPv6 address or a trailing dot.
func normHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(h, ".")
}

// hostOf returns the host of a Host header, without its port.
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return normHost(h)
	}
	return normHost(hostport)
}

// allows reports whether a request's Host header names the server.
func (p *hostPolicy) allows(hostport string) bool {
	if p.any || hostport == "" {
		return true
	}
	if last := p.last.Load(); last != nil && *last == hostport {
		return true
	}
	if !p.check(hostport) {
		return false
	}
	last := hostport // on the heap only here
	p.last.Store(&last)
	return true
}

// check reports whether a Host header names the server, as allows does,
// without the last one allowed.
func (p *hostPolicy) check(hostport string) bool {
	h := hostOf(hostport)
	if p.names[h] {
		return true
	}
	// An address first: clients call the server by one far more often
	// than by a name of the original's, which takes a regexp.
	if ip, err := netip.ParseAddr(h); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || p.anyIP || ip == p.listen
	}
	return originalHost.MatchString(h)
}

// sameOrigin reports whether r comes from no browser page, or from one of
// the server's own origin: its Origin header, if any, is http or https
// and r's Host, and its Sec-Fetch-Site, if any, says same-origin or none
// (the user typed the URL).
func sameOrigin(r *http.Request) (string, bool) {
	if v := r.Header["Sec-Fetch-Site"]; len(v) > 0 && v[0] != "same-origin" && v[0] != "none" {
		return "Sec-Fetch-Site " + quoteClipped(v[0], 40), false
	}
	v := r.Header["Origin"]
	if len(v) == 0 {
		return "", true
	}
	u, err := url.Parse(v[0])
	if len(v) == 1 && err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Path == "" && strings.EqualFold(u.Host, r.Host) {
		return "", true
	}
	return "Origin " + quoteClipped(v[0], 80), false
}

// tokenHash is the SHA-256 of a bearer token: a Server keeps and compares
// the hashes, so that the comparison takes as long whatever the length of
// the token sent, and the token itself is not kept.
type tokenHash [sha256.Size]byte

// hashToken returns the hash of token, nil if token is empty.
func hashToken(token string) *tokenHash {
	if token == "" {
		return nil
	}
	h := tokenHash(sha256.Sum256([]byte(token)))
	return &h
}

// bearer returns r's bearer token: that of its one Authorization header
// "Bearer <token>", "" if it has none.
func bearer(r *http.Request) string {
	v := r.Header["Authorization"]
	if len(v) != 1 {
		return ""
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// matches reports, in constant time, whether r carries the token of h.
func (h *tokenHash) matches(r *http.Request) bool {
	sent := sha256.Sum256([]byte(bearer(r)))
	return subtle.ConstantTimeCompare(sent[:], h[:]) == 1
}

// queryTokens are the query parameters that carry a token in other APIs;
// a guarded Server refuses them, as a URL ends up in logs and histories.
var queryTokens = [...]string{"token", "access_token"}

// hasQueryToken reports whether r's query carries a token.
func hasQueryToken(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	for _, k := range queryTokens {
		if _, ok := q[k]; ok {
			return true
		}
	}
	return false
}

// routeClass is what a guarded route is, for the checks it gets.
type routeClass int

const (
	classRead  routeClass = iota
	classWrite            // POST/DELETE /group, POST /batch
	classAdmin            // the admin API, when served
)

// classify returns the class of the request to path p.
func (s *Server) classify(r *http.Request, p string) routeClass {
	switch {
	case p == "/admin/faults" && s.admin:
		return classAdmin
	case p == "/group" && (r.Method == http.MethodPost || r.Method == http.MethodDelete),
		p == "/batch" && r.Method == http.MethodPost && !s.original:
		return classWrite
	}
	return classRead
}

// guard makes the checks of ServerOptions.HostCheck, AdminToken and
// WriteToken on r, to path p, and answers it if one fails: it reports
// whether r may go on.
func (s *Server) guard(w http.ResponseWriter, r *http.Request, p string) bool {
	if hasQueryToken(r) {
		writeError(w, http.StatusBadRequest,
			"a token in the URL is refused, as URLs end up in logs and histories: send it in the Authorization header, as Authorization: Bearer <token>")
		return false
	}
	if s.hosts != nil && !s.hosts.allows(r.Host) {
		writeError(w, http.StatusForbidden, fmt.Sprintf(
			"Host %s is not a name of this server, so the request is refused (it may come from a web page through DNS rebinding): call the server by its address or localhost, or allow the name with rops serve --allowed-host NAME (or ROPS_ALLOWED_HOSTS)",
			quoteClipped(r.Host, 80)))
		return false
	}
	class := s.classify(r, p)
	if class == classRead {
		return true
	}
	if s.hosts != nil {
		if what, ok := sameOrigin(r); !ok {
			writeError(w, http.StatusForbidden, fmt.Sprintf(
				"cross-site request refused: %s is not this server's own (a web page may not change the nodes or their faults); send the request without Origin and Sec-Fetch-Site headers, as rops and curl do", what))
			return false
		}
	}
	switch {
	case class == classAdmin && s.adminToken != nil:
		return s.authorize(w, r, s.adminToken, "the admin API", "--admin-token-file or ROPS_ADMIN_TOKEN")
	case class == classWrite && s.writeToken != nil:
		return s.authorize(w, r, s.writeToken, "a write", "--write-token-file or ROPS_WRITE_TOKEN")
	}
	return true
}

// authorize answers 401 unless r carries the token of h; what is what the
// token opens, and given how the server and its clients are given it.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, h *tokenHash, what, given string) bool {
	if h.matches(r) {
		return true
	}
	if bearer(r) == "" {
		w.Header()["Www-Authenticate"] = []string{`Bearer realm="rops"`}
		writeError(w, http.StatusUnauthorized, fmt.Sprintf(
			"%s wants a token: send Authorization: Bearer <token>, with rops the token given with %s", what, given))
		return false
	}
	w.Header()["Www-Authenticate"] = []string{`Bearer realm="rops", error="invalid_token"`}
	writeError(w, http.StatusUnauthorized, fmt.Sprintf(
		"wrong token for %s in the Authorization header: send the token the server was given with %s", what, given))
	return false
}

// WithBearer returns a copy of hc whose requests carry the header
// "Authorization: Bearer <token>", unless they carry an Authorization
// header of their own: the http.Client of the Clients of a server that
// wants a write token (ServerOptions.WriteToken). It returns hc if token
// is empty.
func WithBearer(hc *http.Client, token string) *http.Client {
	if token == "" {
		return hc
	}
	c := *hc
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = &bearerTransport{rt: rt, value: []string{"Bearer " + token}}
	return &c
}

// bearerTransport adds an Authorization header to requests without one.
type bearerTransport struct {
	rt    http.RoundTripper
	value []string
}

// RoundTrip sends a copy of r with the header.
func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; ok {
		return t.rt.RoundTrip(r)
	}
	// A RoundTripper must not change the request it is given.
	r2 := *r
	r2.Header = r.Header.Clone()
	if r2.Header == nil {
		r2.Header = http.Header{}
	}
	r2.Header["Authorization"] = t.value
	return t.rt.RoundTrip(&r2)
}

// CloseIdleConnections closes the idle connections of the transport
// underneath, as http.Client.CloseIdleConnections asks.
func (t *bearerTransport) CloseIdleConnections() {
	if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
