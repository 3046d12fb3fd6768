package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/reliable-ops/rops/core"
)

// stdDecoder is a decoder of listings built on the standard library.
type stdDecoder struct {
	name   string
	decode func(io.Reader, func(core.Record) bool) (core.GroupID, error)
}

// stdDecoders are what BenchmarkDecodeListing measures against the
// client's decoder on the same listing (jsontext's is added under
// GOEXPERIMENT=jsonv2).
var stdDecoders = []stdDecoder{
	{"json-decoder", decodeListingStd},
	{"json-tokens", decodeListingTokens},
}

// decodeListingStd reads a GET /groups answer as groupsDecoder does, a
// record at a time, with encoding/json's streaming Decoder: Token and More
// walk the object and the array, and Decode reads each record. It is the
// standard library's candidate for the hand-written decoder, kept so that
// BenchmarkDecodeListing measures both on the same listing.
func decodeListingStd(r io.Reader, fn func(core.Record) bool) (next core.GroupID, err error) {
	d := json.NewDecoder(r)
	if err := delim(d, '{'); err != nil {
		return "", err
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch tok {
		case "groups":
			tok, err := d.Token()
			if err != nil || tok == nil {
				return "", err
			}
			if tok != json.Delim('[') {
				return "", fmt.Errorf("groups: %v where '[' should be", tok)
			}
			for d.More() {
				var rec struct {
					GroupID   *string `json:"groupId"`
					Timestamp *string `json:"timestamp"`
				}
				if err := d.Decode(&rec); err != nil {
					return "", err
				}
				if rec.GroupID == nil || *rec.GroupID == "" {
					return "", errors.New("a record without groupId")
				}
				out := core.Record{ID: core.GroupID(*rec.GroupID)}
				if rec.Timestamp != nil {
					out.Token = core.Token(*rec.Timestamp)
				}
				if !fn(out) {
					return "", nil
				}
			}
			if err := delim(d, ']'); err != nil {
				return "", err
			}
		case "next":
			var s *string
			if err := d.Decode(&s); err != nil {
				return "", err
			}
			if s != nil {
				next = core.GroupID(*s)
			}
		default:
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	if err := delim(d, '}'); err != nil {
		return "", err
	}
	if _, err := d.Token(); err != io.EOF {
		return "", fmt.Errorf("after the answer: %v", err)
	}
	return next, nil
}

// decodeListingTokens is decodeListingStd with Token alone, every record's
// keys and values included: no reflection, a token per value.
func decodeListingTokens(r io.Reader, fn func(core.Record) bool) (next core.GroupID, err error) {
	d := json.NewDecoder(r)
	if err := delim(d, '{'); err != nil {
		return "", err
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch tok {
		case "groups":
			if err := delim(d, '['); err != nil {
				return "", err
			}
			for d.More() {
				if err := delim(d, '{'); err != nil {
					return "", err
				}
				var rec core.Record
				for d.More() {
					k, err := d.Token()
					if err != nil {
						return "", err
					}
					v, err := d.Token()
					if err != nil {
						return "", err
					}
					s, _ := v.(string)
					switch k {
					case "groupId":
						rec.ID = core.GroupID(s)
					case "timestamp":
						rec.Token = core.Token(s)
					}
				}
				if err := delim(d, '}'); err != nil {
					return "", err
				}
				if rec.ID == "" {
					return "", errors.New("a record without groupId")
				}
				if !fn(rec) {
					return "", nil
				}
			}
			if err := delim(d, ']'); err != nil {
				return "", err
			}
		case "next":
			v, err := d.Token()
			if err != nil {
				return "", err
			}
			s, _ := v.(string)
			next = core.GroupID(s)
		default:
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	if err := delim(d, '}'); err != nil {
		return "", err
	}
	if _, err := d.Token(); err != io.EOF {
		return "", fmt.Errorf("after the answer: %v", err)
	}
	return next, nil
}

// delim reads the delimiter want.
func delim(d *json.Decoder, want json.Delim) error {
	tok, err := d.Token()
	if err == nil && tok != want {
		err = fmt.Errorf("%v where %q should be", tok, want)
	}
	return err
}
