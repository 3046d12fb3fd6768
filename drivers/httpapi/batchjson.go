package httpapi

import (
	"bytes"
	"strings"
)

// A fast path for the JSON of batches. encoding/json decodes by reflection
// and a byte-at-a-time scanner: in a job at 0.2 it was 13% of a server's
// CPU (the POST /batch bodies) and 6% of a client's (the results). The
// bodies and results rops sends have one plain shape, which jsonScan reads
// directly; anything else (an escape in a key, an unknown or repeated key,
// a null, a number where a string goes, a byte outside ASCII) makes it give
// up, and the caller decodes with encoding/json as before, so that every
// message about a malformed body, and every odd but valid body, stays as
// encoding/json has it. FuzzBatchFastPath holds the two to the same result.

// jsonScan reads JSON from b at i. Its methods report false where the input
// is not what the fast path takes.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c, after any white space.
func (s *jsonScan) eat(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// peek returns the next byte after any white space, or 0 at the end.
func (s *jsonScan) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// plain reads a string of printable ASCII with no escape and returns its
// bytes, quotes included.
func (s *jsonScan) plain() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start:s.i], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// text reads a string of ASCII and returns its value: the escapes \" \\
// \/ \b \f \n \r \t are taken, \u and bytes outside ASCII are not.
func (s *jsonScan) text() (string, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	s.i++
	start, escaped := s.i, false
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				return string(raw), true
			}
			return unescape(raw)
		case c == '\\':
			escaped = true
			s.i++ // the escaped byte, checked by unescape
		case c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// unescape returns raw, the inside of a string, with its escapes replaced.
func unescape(raw []byte) (string, bool) {
	var out strings.Builder
	out.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		i++
		if i == len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			out.WriteByte(raw[i])
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		default:
			return "", false
		}
	}
	return out.String(), true
}

// int reads a non-negative integer of at most 9 digits with no leading zero.
func (s *jsonScan) int() (int, bool) {
	s.space()
	n, digits := 0, 0
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		if digits > 0 && n == 0 || digits == 9 {
			return 0, false
		}
		n = n*10 + int(s.b[s.i]-'0')
		digits++
	}
	if digits == 0 || s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	return n, true
}

// object reads an object whose values field reads, calling it with each
// key; a key given twice ends the fast path (encoding/json keeps the last,
// merging objects), as does one field does not take. The key is only good
// until field returns.
func (s *jsonScan) object(field func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var seen [8][]byte
	n := 0
	for {
		k, ok := s.plain()
		if !ok || !s.eat(':') {
			return false
		}
		key := k[1 : len(k)-1]
		for _, prev := range seen[:n] {
			if string(prev) == string(key) {
				return false
			}
		}
		if n == len(seen) || !field(key) {
			return false
		}
		seen[n] = key
		n++
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// array reads an array, calling elem for each element.
func (s *jsonScan) array(elem func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.eat(']') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.space()
	return s.i == len(s.b)
}

// scanBatch is decodeBatch's fast path: the items and wait of a POST /batch
// body as encoding/json (unknown fields disallowed) would decode them, or
// false where the body is not of the plain shape a Client sends.
func scanBatch(body []byte) (items []batchItem, wait string, ok bool) {
	// The ids are cut from one copy of the body: it goes back to its pool
	// once decoded, and encoding/json's RawMessage copies too.
	s := &jsonScan{b: bytes.Clone(body)}
	// A batch's items share their op, node and fence more often than not:
	// a value like the last one is not copied again.
	str := func(dst *string, last string) bool {
		v, ok := s.plain()
		if !ok {
			return false
		}
		if v = v[1 : len(v)-1]; string(v) == last {
			*dst = last
		} else {
			*dst = string(v)
		}
		return true
	}
	var last batchItem
	item := func() bool {
		items = append(items, batchItem{})
		it := &items[len(items)-1]
		ok := s.object(func(key []byte) bool {
			switch string(key) {
			case "op":
				return str(&it.Op, last.Op)
			case "node":
				return str(&it.Node, last.Node)
			case "groupId":
				v, ok := s.plain()
				it.GroupID = v
				return ok
			case "timestamp":
				return str(&it.Timestamp, last.Timestamp)
			case "older_than":
				return str(&it.OlderThan, last.OlderThan)
			case "fence":
				return str(&it.Fence, last.Fence)
			}
			return false
		})
		last = *it
		return ok
	}
	ok = s.object(func(key []byte) bool {
		switch string(key) {
		case "items":
			if s.peek() != '[' {
				return false
			}
			items = make([]batchItem, 0, 16)
			return s.array(item)
		case "wait":
			return str(&wait, "")
		}
		return false
	}) && s.end()
	return items, wait, ok
}

// scanResults is the fast path of a Client reading a POST /batch answer:
// its results as encoding/json would decode them, or false where the
// answer is not of the plain shape a rops server sends.
func scanResults(data []byte) (results []batchResult, ok bool) {
	s := &jsonScan{b: data}
	result := func() bool {
		results = append(results, batchResult{})
		r := &results[len(results)-1]
		return s.object(func(key []byte) bool {
			switch string(key) {
			case "status":
				v, ok := s.int()
				r.Status = v
				return ok
			case "body":
				v, ok := s.text()
				r.Body = v
				return ok
			case "headers":
				if s.peek() != '{' {
					return false
				}
				r.Headers = make(map[string]string, 1)
				return s.object(func(key []byte) bool {
					v, ok := s.text()
					r.Headers[string(key)] = v
					return ok
				})
			}
			return false
		})
	}
	ok = s.object(func(key []byte) bool {
		if string(key) != "results" || s.peek() != '[' {
			return false
		}
		results = make([]batchResult, 0, 16)
		return s.array(result)
	}) && s.end()
	return results, ok
}
