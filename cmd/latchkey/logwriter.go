package main

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logBuffering is how a logWriter batches lines.
type logBuffering struct {
	// interval is the longest a line waits to be written, and so what a
	// crash (SIGKILL, a fatal runtime error) can lose: the lines of the
	// last interval.
	interval time.Duration
	// flushAt is the size at which the buffer is written without waiting
	// for the interval.
	flushAt int
	// max bounds the buffer: a line that would grow it past max waits
	// for the writer goroutine to take it.
	max int
	// closeWait bounds how long Close waits for the last lines to be
	// written: an output that takes no more (a log pipe nobody reads)
	// must not keep the process from exiting.
	closeWait time.Duration
}

// defaultLogBuffering is what serve uses. 100 ms is about the shortest
// delay a person tailing the log perceives, and the loss a crash risks is
// a tenth of a second of lines; already at 1000 requests/s it turns 100
// write(2)s into one, and past about 3000 lines/s (64 KiB per 100 ms) the
// size decides instead: a write of 64 KiB, the default capacity of a pipe,
// so that a container runtime's reader takes a batch in one read. Memory
// is bounded by two buffers of at most 1 MiB: the one being written and
// the one filling.
// Close waits up to 5 s, within the grace period that shutdown leaves.
var defaultLogBuffering = logBuffering{interval: 100 * time.Millisecond, flushAt: 64 << 10, max: 1 << 20, closeWait: 5 * time.Second}

// logWriter is the process's log output: one goroutine writes the lines
// that Write appends to a buffer, every interval, whenever the buffer
// reaches flushAt, when asked to by flushSoon (the handler asks for every
// line at warn and above, so that errors show at once) and, completely,
// on Close. A request's Write is a short append under one lock, never a
// system call.
//
// When out is slower than the lines come and both buffers are full, Write
// waits for the writer goroutine to take one (backpressure) rather than
// drop the line: the request log is the record of who called the service,
// and a flood (of logins, say) is when an operator needs it most. The
// wait is what every request already did with one write(2) per line, now
// only past 1 MiB of lines behind one write. A write error is not
// retried: the lines of that write are counted in lost and dropped, and
// Write goes on without waiting for anything.
//
// After Close, Write writes through to out, so that a straggler's line is
// not lost. A logWriter is safe for concurrent use.
type logWriter struct {
	out io.Writer
	cfg logBuffering

	mu     sync.Mutex
	room   sync.Cond // broadcast when the writer goroutine takes the buffer
	buf    []byte
	closed bool

	kick    chan struct{}      // asks for a flush; capacity 1
	flushes chan chan struct{} // asks for a flush and its acknowledgement
	stop    chan struct{}      // closed by Close
	done    chan struct{}      // closed when the writer goroutine has written everything and returned
	close   sync.Once

	spare []byte // the writer goroutine's: the previous buffer, for reuse
	// lost counts the lines that a write error kept from out.
	lost atomic.Uint64
}

// newLogWriter starts the writer goroutine of a logWriter writing to out.
// Close stops it.
func newLogWriter(out io.Writer, cfg logBuffering) *logWriter {
	w := &logWriter{
		out:     out,
		cfg:     cfg,
		buf:     make([]byte, 0, cfg.flushAt),
		spare:   make([]byte, 0, cfg.flushAt),
		kick:    make(chan struct{}, 1),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write appends p, whole lines, to the buffer. It reports no error: one
// writing out fails later, in the writer goroutine, and counts in lost.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for !w.closed && len(w.buf) > 0 && len(w.buf)+len(p) > w.cfg.max {
		w.flushSoon()
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		return w.writeThrough(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= w.cfg.flushAt
	w.mu.Unlock()
	if full {
		w.flushSoon()
	}
	return len(p), nil
}

// writeThrough writes p to out once everything written before Close has
// been, so that lines keep their order.
func (w *logWriter) writeThrough(p []byte) (int, error) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	// A copy, so that p does not escape through out, an interface, and
	// the callers' buffers can stay on their stacks.
	return w.out.Write(bytes.Clone(p))
}

// flushSoon asks the writer goroutine to write the buffer now, without
// waiting for it.
func (w *logWriter) flushSoon() {
	select {
	case w.kick <- struct{}{}:
	default: // a flush is already asked for: it will take this line too
	}
}

// Flush returns once every line written before it has been written to
// out (or lost to a write error).
func (w *logWriter) Flush() {
	ack := make(chan struct{})
	select {
	case w.flushes <- ack:
		<-ack
	case <-w.done:
	}
}

// Close writes every line still buffered and stops the writer goroutine,
// waiting at most closeWait for out. Later calls do nothing.
func (w *logWriter) Close() {
	w.close.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.room.Broadcast()
		w.mu.Unlock()
		close(w.stop)
		select {
		case <-w.done:
		case <-time.After(w.cfg.closeWait):
		}
	})
}

func (w *logWriter) run() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.interval)
	defer t.Stop()
	for {
		var ack chan struct{}
		select {
		case <-t.C:
		case <-w.kick:
		case ack = <-w.flushes:
		case <-w.stop:
			// closed is set: nothing is appended after this.
			w.flush()
			return
		}
		w.flush()
		if ack != nil {
			close(ack)
		}
	}
}

// flush takes the buffer, leaving the spare one to fill, and writes it.
func (w *logWriter) flush() {
	w.mu.Lock()
	b := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.room.Broadcast()
	w.mu.Unlock()
	if len(b) > 0 {
		if n, err := w.out.Write(b); err != nil {
			w.lost.Add(uint64(bytes.Count(b[min(max(n, 0), len(b)):], []byte{'\n'})))
		}
	}
	w.spare = b
}
