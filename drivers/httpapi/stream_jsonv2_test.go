//go:build goexperiment.jsonv2

package httpapi_test

import (
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"io"

	"github.com/reliable-ops/rops/core"
)

// decodeListingJSONText is decodeListingTokens with encoding/json/jsontext
// (GOEXPERIMENT=jsonv2 in Go 1.26), whose ReadToken does not box each
// token, for BenchmarkDecodeListing: the standard library's next candidate.
func decodeListingJSONText(r io.Reader, fn func(core.Record) bool) (next core.GroupID, err error) {
	d := jsontext.NewDecoder(r)
	kind := func(want jsontext.Kind) error {
		tok, err := d.ReadToken()
		if err == nil && tok.Kind() != want {
			err = fmt.Errorf("%v where %v should be", tok.Kind(), want)
		}
		return err
	}
	if err := kind('{'); err != nil {
		return "", err
	}
	for d.PeekKind() != '}' {
		key, err := d.ReadToken()
		if err != nil {
			return "", err
		}
		switch key.String() {
		case "groups":
			if err := kind('['); err != nil {
				return "", err
			}
			for d.PeekKind() != ']' {
				if err := kind('{'); err != nil {
					return "", err
				}
				var rec core.Record
				for d.PeekKind() != '}' {
					k, err := d.ReadToken()
					if err != nil {
						return "", err
					}
					// A token is void after the next read.
					key := k.String()
					v, err := d.ReadToken()
					if err != nil {
						return "", err
					}
					switch key {
					case "groupId":
						rec.ID = core.GroupID(v.String())
					case "timestamp":
						rec.Token = core.Token(v.String())
					}
				}
				if err := kind('}'); err != nil {
					return "", err
				}
				if rec.ID == "" {
					return "", errors.New("a record without groupId")
				}
				if !fn(rec) {
					return "", nil
				}
			}
			if err := kind(']'); err != nil {
				return "", err
			}
		case "next":
			v, err := d.ReadToken()
			if err != nil {
				return "", err
			}
			if v.Kind() == '"' {
				next = core.GroupID(v.String())
			}
		default:
			if err := d.SkipValue(); err != nil {
				return "", err
			}
		}
	}
	if err := kind('}'); err != nil {
		return "", err
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return "", fmt.Errorf("after the answer: %v", err)
	}
	return next, nil
}

func init() {
	stdDecoders = append(stdDecoders, stdDecoder{"jsontext", decodeListingJSONText})
}
