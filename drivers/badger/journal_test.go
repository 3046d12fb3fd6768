package badger_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/reliable-ops/rops/core"
	"github.com/reliable-ops/rops/drivers/badger"
)

// intent returns the i-th of a run of create intents.
func intent(i int) core.Intent {
	return core.Intent{Op: core.OpCreate, ID: core.GroupID(fmt.Sprint("id", i)),
		Token: core.Token(fmt.Sprintf("1700000001.%06d", i)), Nodes: []string{"node01", "node02", "node03"}}
}

// checksummed returns the value an older rops stored for the JSON js: its
// CRC32-C, big-endian, then js.
func checksummed(js string) []byte {
	v := binary.BigEndian.AppendUint32(nil, crc32.Checksum([]byte(js), crc32.MakeTable(crc32.Castagnoli)))
	return append(v, js...)
}

// entry is one key and value of an old journal.
type entry struct {
	key   string
	value []byte
}

// begun returns the entries an older rops' Begin wrote for intents, its
// i-th under sequence number i+1.
func begun(t *testing.T, intents ...core.Intent) []entry {
	t.Helper()
	var es []entry
	for i, in := range intents {
		js, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{fmt.Sprintf("j/%020d", i+1), checksummed(string(js))})
	}
	return es
}

// writeJournal writes entries into the badger database in dir, as an older
// rops kept its journal; the database is closed when it returns.
func writeJournal(t *testing.T, dir string, entries ...entry) {
	t.Helper()
	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	err = db.Update(func(txn *badgerdb.Txn) error {
		for _, e := range entries {
			if err := txn.Set([]byte(e.key), e.value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing the journal: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// checkIntents checks ReadJournal returned want, deeply, in order.
func checkIntents(t *testing.T, got, want []core.Intent) {
	t.Helper()
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("ReadJournal=%+v, want %+v", got, want)
	}
}

// TestReadJournal reads what an older rops left: intents oldest first
// (by the sequence number in their key, not the order of the writes), one
// written as that rops' JSON literally, and reads them again: ReadJournal
// removes nothing.
func TestReadJournal(t *testing.T) {
	dir := t.TempDir()
	del := core.Intent{Op: core.OpDelete, ID: "y", Token: "2.000002", Nodes: []string{"node01", "node02"},
		PreImage: map[string]core.Token{"node01": "0.500000"}, RollBack: true}
	es := begun(t, intent(0), core.Intent{}, intent(2))
	es[1].value = checksummed(`{"op":"delete","id":"y","token":"2.000002","nodes":["node01","node02"],"pre_image":{"node01":"0.500000"},"roll_back":true}`)
	slices.Reverse(es)
	writeJournal(t, dir, es...)
	for range 2 {
		got, err := badger.ReadJournal(dir)
		if err != nil {
			t.Fatalf("ReadJournal: %v", err)
		}
		checkIntents(t, got, []core.Intent{intent(0), del, intent(2)})
	}
}

// TestReadJournalEmpty: a journal whose every intent was finished.
func TestReadJournalEmpty(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir)
	got, err := badger.ReadJournal(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadJournal=%v, %v; want nothing", got, err)
	}
}

// TestReadJournalCorrupt damages the value of the middle one of three
// intents, or adds an entry, and checks that ReadJournal returns the intact
// intents in order and names the bad entry.
func TestReadJournalCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(v []byte) []byte // the middle intent's new value
		key     string                // or a new entry's key, with value damage(nil)
		wantErr string
	}{
		{name: "bit flip", damage: func(v []byte) []byte { v[len(v)/2] ^= 0x10; return v }, wantErr: "checksum mismatch"},
		{name: "torn JSON", damage: func(v []byte) []byte { return v[:len(v)-3] }, wantErr: "checksum mismatch"},
		{name: "torn checksum", damage: func(v []byte) []byte { return v[:3] }, wantErr: "torn: 3 bytes"},
		{name: "empty", damage: func([]byte) []byte { return nil }, wantErr: "torn: 0 bytes"},
		{name: "checksummed garbage", damage: func([]byte) []byte { return checksummed("{op:") }, wantErr: "not an intent"},
		{name: "checksummed non-intent", damage: func([]byte) []byte { return checksummed(`{"op":"create"}`) }, wantErr: "no token"},
		{name: "bad key", key: "j/garbage", damage: func([]byte) []byte { return checksummed(`{"op":"create","token":"1.5"}`) }, wantErr: "not a journal key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			es := begun(t, intent(0), intent(1), intent(2))
			want := []core.Intent{intent(0), intent(2)}
			key := tc.key
			if key == "" {
				key = es[1].key
				es[1].value = tc.damage(es[1].value)
			} else {
				es = append(es, entry{key, tc.damage(nil)})
				want = []core.Intent{intent(0), intent(1), intent(2)}
			}
			writeJournal(t, dir, es...)
			got, err := badger.ReadJournal(dir)
			checkCorrupt(t, err, dir, []string{key}, tc.wantErr)
			checkIntents(t, got, want)
		})
	}
}

// TestReadJournalCorruptMany checks that every bad entry is named, in order.
func TestReadJournalCorruptMany(t *testing.T) {
	dir := t.TempDir()
	es := begun(t, intent(0), intent(1), intent(2), intent(3), intent(4))
	var bad []string
	for _, i := range []int{0, 2, 3} {
		es[i].value = []byte("x")
		bad = append(bad, es[i].key)
	}
	writeJournal(t, dir, es...)
	got, err := badger.ReadJournal(dir)
	checkCorrupt(t, err, dir, bad, "torn: 1 bytes")
	checkIntents(t, got, []core.Intent{intent(1), intent(4)})
}

func checkCorrupt(t *testing.T, err error, dir string, keys []string, reason string) {
	t.Helper()
	ce, ok := errors.AsType[*badger.CorruptError](err)
	if !ok {
		t.Fatalf("ReadJournal: err=%v, want a *badger.CorruptError", err)
	}
	var got []string
	for _, e := range ce.Entries {
		got = append(got, e.Key)
		if !strings.Contains(e.Err.Error(), reason) {
			t.Fatalf("entry %s: err=%q, want it to mention %q", e.Key, e.Err, reason)
		}
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("CorruptError keys=%q, want %q", got, keys)
	}
	for _, want := range append([]string{dir, reason}, keys...) {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("ReadJournal: err=%q, want it to mention %q", err, want)
		}
	}
}

// TestReadJournalLocked: an old journal that this process, or another (an
// older rops still running), has open is not read.
func TestReadJournalLocked(t *testing.T) {
	dir := t.TempDir()
	writeJournal(t, dir, begun(t, intent(0))...)
	db, err := badger.OpenDB(dir)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	_, err = badger.ReadJournal(dir)
	checkLocked(t, err, dir, "this process")
	checkJournalNamed(t, err)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	pid := startHolder(t, dir)
	_, err = badger.ReadJournal(dir)
	checkLocked(t, err, dir, fmt.Sprintf("pid %d", pid))
	checkJournalNamed(t, err)
}

func checkJournalNamed(t *testing.T, err error) {
	t.Helper()
	if got, want := err.Error(), "journal "; !strings.HasPrefix(got, want) {
		t.Fatalf("ReadJournal of a held dir: err=%q, want it to start with %q", got, want)
	}
}
