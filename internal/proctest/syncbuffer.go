package proctest

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a child process (or a server's
// goroutines) may write while the test reads it. It is safe for
// concurrent use; the zero value is an empty buffer ready to use, which
// keeps everything.
type SyncBuffer struct {
	// Limit, if positive, bounds what the buffer keeps to the last Limit
	// to 2×Limit bytes written: for a child that logs every request of a
	// load test, whose full log would grow by gigabytes. Set it before the
	// first Write.
	Limit int

	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer, first dropping the oldest bytes beyond
// Limit if it is set. It never fails.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Limit > 0 && s.b.Len()+len(p) > 2*s.Limit {
		// bytes.Buffer slides what is left to the front when it next
		// grows, so the buffer's memory stays within about 2×Limit.
		s.b.Next(max(0, s.b.Len()+len(p)-s.Limit))
	}
	return s.b.Write(p)
}

// String returns everything written so far, or with Limit set the last
// Limit to 2×Limit bytes of it (which may start mid-line).
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
