package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/decorators/faults"
)

// statusNoResponse is what the access log shows for a request whose
// connection was reset with no answer: nginx's 444, which it logs for
// exactly that.
const statusNoResponse = 444

// groupError answers err, which node returned for a request on a group
// route, as nodeError does, except for the faults that must not look like a
// rops node's answer: a connection reset after the write gets a real TCP
// reset, and a proxy's 502, 503 or 504 gets the proxy's answer, without the
// marks of a rops node, since a client may trust those.
func groupError(w http.ResponseWriter, node core.Node, err error, id core.GroupID, token core.Token) {
	status, hasStatus := HTTPStatus(err)
	switch {
	case errors.Is(err, faults.ErrReset):
		resetConnection(w)
	case errors.Is(err, faults.ErrGateway) && hasStatus:
		writeGateway(w, status)
	default:
		nodeError(w, node, err, id, token)
	}
}

// resetConnection ends the request's connection with a TCP RST and no
// answer, as a server that crashed after the write would: the client sees
// "connection reset by peer", not an EOF that a transport may take for a
// stale keep-alive connection. Where the connection cannot be taken over
// (HTTP/2), it aborts the answer, which resets the stream.
func resetConnection(w http.ResponseWriter) {
	if iw, ok := w.(*itemWriter); ok {
		// An item of a batch: its result says "no answer".
		iw.reset = true
		return
	}
	if aw, ok := w.(*answerWriter); ok {
		aw.reset = true
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	c := conn
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		// A TLS connection: reset the TCP connection under it.
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		// Linger 0 makes close send RST at once instead of FIN.
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// writeGateway answers status as nginx answers it in front of an upstream
// that failed: its HTML page, and no JSON error or rops header.
func writeGateway(w http.ResponseWriter, status int) {
	h := w.Header()
	clear(h)
	h["Content-Type"] = []string{"text/html"}
	text := fmt.Sprintf("%d %s", status, faults.GatewayText(status))
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", text, text)
}
