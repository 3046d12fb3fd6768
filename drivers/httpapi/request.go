package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/reliable-ops/rops/core"
)

// bodyExample shows a client what to send.
const bodyExample = `{"groupId": "5"}`

// body is a request body read into a buffer kept for the next request
// (bodies): a body is needed only until its id is decoded.
type body struct {
	lim io.LimitedReader
	buf bytes.Buffer
}

var bodies = sync.Pool{New: func() any { return new(body) }}

// Bytes returns the body, valid until release.
func (b *body) Bytes() []byte { return b.buf.Bytes() }

// release gives b to the next request; b must not be used after.
func (b *body) release() { bodies.Put(b) }

// readBody reads r's body, up to max bytes, into a kept buffer that the
// caller must release.
func readBody(r *http.Request, max int64) (*body, *httpError) {
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	b := bodies.Get().(*body)
	b.buf.Reset()
	// One byte over the limit tells a body at the limit from one beyond it.
	b.lim = io.LimitedReader{R: r.Body, N: max + 1}
	_, err := b.buf.ReadFrom(&b.lim)
	b.lim.R = nil
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		n := b.buf.Len()
		b.release()
		return nil, reject(http.StatusRequestTimeout, fmt.Sprintf(
			"the body did not arrive in time: %d of %d bytes came; send the whole request at once", n, r.ContentLength))
	case err != nil:
		b.release()
		return nil, reject(http.StatusBadRequest, "cannot read the body: "+err.Error())
	case int64(b.buf.Len()) > max:
		b.release()
		return nil, tooLarge(max)
	}
	return b, nil
}

func tooLarge(max int64) *httpError {
	return reject(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the body is over the limit of %d bytes: send a JSON object such as %s", max, bodyExample))
}

// decodeGroupRequest reads the body of POST and DELETE /group: a JSON object
// whose groupId is a string, or a number taken as the decimal text it is
// written as ({"groupId": 5} is id "5"). Other keys are ignored and keys
// match exactly, as the original's request.json["groupId"] did. It returns
// a 400 error for a body that is not a JSON object and a 406 error for a
// missing body, a missing groupId or an invalid id.
func decodeGroupRequest(body []byte) (core.GroupID, *httpError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", reject(http.StatusNotAcceptable, "missing body: send a JSON object such as "+bodyExample)
	}
	if id, ok := decodeSimple(body); ok {
		return parseID(id)
	}
	if !utf8.Valid(body) {
		// encoding/json would turn the bad bytes into U+FFFD: another id.
		return "", reject(http.StatusBadRequest, "the body is not valid UTF-8: send JSON such as "+bodyExample)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return "", reject(http.StatusBadRequest, "the body must be a JSON object such as "+bodyExample+": "+jsonProblem(err))
	}
	raw, ok := m["groupId"]
	if m == nil || !ok || string(raw) == "null" {
		return "", reject(http.StatusNotAcceptable, "missing groupId: send a JSON object such as "+bodyExample)
	}
	switch c := raw[0]; {
	case c == '"':
		if at, ok := loneSurrogate(raw); ok {
			// encoding/json would make it U+FFFD, and "\ud800" and
			// "\udfff" the same id.
			return "", reject(http.StatusNotAcceptable, fmt.Sprintf("invalid group id %.40s: %s is half of a UTF-16 surrogate pair, not a character", raw, raw[at:at+6]))
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			// Unreachable: raw is a string that Unmarshal accepted.
			return "", reject(http.StatusBadRequest, "the groupId is not a JSON string: "+err.Error())
		}
		return parseID(s)
	case c == '-' || '0' <= c && c <= '9':
		return parseID(string(raw))
	}
	return "", reject(http.StatusNotAcceptable, fmt.Sprintf("groupId must be a string or a number, such as %s, not %.40s", bodyExample, raw))
}

// loneSurrogate reports whether the JSON string raw escapes a UTF-16
// surrogate that is not part of a pair (a high one, \ud800 to \udbff,
// followed by a low one, \udc00 to \udfff), and where its escape starts.
func loneSurrogate(raw []byte) (int, bool) {
	high := -1 // where an unpaired high surrogate's escape starts
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			if high >= 0 {
				return high, true
			}
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			if high >= 0 {
				return high, true
			}
			i++ // an escape of one character, such as \\ or \"
			continue
		}
		if i+6 > len(raw) {
			break // not valid JSON: the decoder refuses it
		}
		r, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			break
		}
		switch {
		case r >= 0xd800 && r < 0xdc00:
			if high >= 0 {
				return high, true
			}
			high = i
		case r >= 0xdc00 && r < 0xe000:
			if high < 0 {
				return i, true
			}
			high = -1
		default:
			if high >= 0 {
				return high, true
			}
		}
		i += 5
	}
	return high, high >= 0
}

// decodeSimple decodes, without encoding/json, the body every client sends:
// {"groupId": "ID"} with any spacing, where ID holds no escapes and no
// control or non-ASCII bytes. It reports false for anything else, which the
// full decoder then reads: both give the same id (FuzzDecodeGroupRequest).
func decodeSimple(b []byte) (string, bool) {
	b = skipSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return "", false
	}
	b = skipSpace(b[1:])
	const key = `"groupId"`
	if !bytes.HasPrefix(b, []byte(key)) {
		return "", false
	}
	b = skipSpace(b[len(key):])
	if len(b) == 0 || b[0] != ':' {
		return "", false
	}
	b = skipSpace(b[1:])
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	b = b[1:]
	end := 0
	for end < len(b) && b[end] != '"' {
		if c := b[end]; c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return "", false
		}
		end++
	}
	if end == len(b) {
		return "", false
	}
	id := b[:end]
	b = skipSpace(b[end+1:])
	if len(b) == 0 || b[0] != '}' || len(skipSpace(b[1:])) != 0 {
		return "", false
	}
	return string(id), true
}

// skipSpace drops JSON whitespace from the front of b.
func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

func parseID(s string) (core.GroupID, *httpError) {
	id, err := core.ParseGroupID(s)
	if err != nil {
		return "", reject(http.StatusNotAcceptable, err.Error())
	}
	return id, nil
}

// parseLimit reads the limit= of GET /groups.
func parseLimit(q []string) (int, *httpError) {
	if len(q) == 0 || q[0] == "" {
		return DefaultListLimit, nil
	}
	n, err := strconv.Atoi(q[0])
	if err != nil || n < 1 || n > MaxListLimit {
		return 0, reject(http.StatusNotAcceptable,
			fmt.Sprintf("invalid limit %q: give a whole number from 1 to %d", q[0], MaxListLimit))
	}
	return n, nil
}

// jsonProblem says what is wrong with JSON that err refused, without the Go
// types that encoding/json names.
func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field == "" {
		return "it is a JSON " + te.Value
	}
	return err.Error()
}
