package httpapi

import (
	"bufio"
	"io"

	"github.com/reliable-ops/rops/core"
)

// DecodeListing decodes a GET /groups answer from r as a Client does, through
// a buffer of bufio's smallest size, so that strings span buffers.
func DecodeListing(r io.Reader) ([]core.Record, core.GroupID, error) {
	d := groupsDecoder{r: bufio.NewReaderSize(r, 16)}
	recs := []core.Record{}
	next, _, err := d.decode(func(rec core.Record) bool {
		recs = append(recs, rec)
		return true
	})
	return recs, next, err
}

// DecodeListingLarge counts the records of a GET /groups answer read from r
// as a Client reads it, for benchmarks.
func DecodeListingLarge(r io.Reader) (int, core.GroupID, error) {
	d := groupsDecoder{r: bufio.NewReaderSize(r, 32<<10)}
	n := 0
	next, _, err := d.decode(func(core.Record) bool { n++; return true })
	return n, next, err
}

// Pending returns how many calls wait for c's next batch.
func Pending(c *Client) int {
	return c.batches.Waiting()
}
