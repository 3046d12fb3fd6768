package wal

import "testing"

// TestLastWritten: past the log's end, only the extents that may hold data
// are read; a byte outside them is a hole's, which reads as zero.
func TestLastWritten(t *testing.T) {
	data := make([]byte, 10000)
	data[100], data[5000], data[9000] = 1, 1, 1
	for _, tc := range []struct {
		name string
		from int64
		ext  []extent
		want int64
	}{
		{"the whole file", 0, whole(10000), 9001},
		{"from past every byte", 9001, whole(10000), 9001},
		{"the last byte outside the extents", 0, []extent{{0, 4096}, {4096, 8192}}, 5001},
		{"from inside an extent", 4000, []extent{{0, 4096}, {4096, 8192}}, 5001},
		{"no extents", 0, nil, 0},
		{"an extent past the data", 0, []extent{{0, 200}, {9500, 20000}}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastWritten(data, tc.from, tc.ext); got != tc.want {
				t.Fatalf("lastWritten(from %d, %v) = %d, want %d", tc.from, tc.ext, got, tc.want)
			}
		})
	}
}
