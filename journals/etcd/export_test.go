package etcd

// HoldFor makes the journal's committer wait until n writes are queued
// before it sends its next transaction, so that a test's writes share one.
func (j *Journal) HoldFor(n int) {
	j.batch.mu.Lock()
	defer j.batch.mu.Unlock()
	j.batch.gate = n
}

// ParseURL is parseURL, for tests of the URL without a connection.
var ParseURL = parseURL
