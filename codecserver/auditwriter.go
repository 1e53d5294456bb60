package codecserver

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Defaults for [NewAuditWriter].
const (
	DefaultAuditFlushInterval = time.Second
	auditBufferSize           = 64 << 10
)

// AuditWriter buffers audit lines in memory and writes them to the
// underlying writer every interval, when 64 KiB have gathered, and on
// Flush and Close: one write system call per batch instead of one per
// request. Close (which the server calls on shutdown, after the last
// request) writes everything; a crash loses at most the lines of the last
// interval, and never more than 64 KiB of them. It is safe for concurrent
// use; each Write (one slog record) is kept whole.
type AuditWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    *bufio.Writer
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// NewAuditWriter returns an AuditWriter over w flushing every interval.
// With interval <= 0 every Write goes straight to w.
func NewAuditWriter(w io.Writer, interval time.Duration) *AuditWriter {
	a := &AuditWriter{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		a.buf = bufio.NewWriterSize(w, 0) // bufio's minimum; Write flushes below
		close(a.done)
		return a
	}
	a.buf = bufio.NewWriterSize(w, auditBufferSize)
	go a.loop(interval)
	return a
}

func (a *AuditWriter) loop(interval time.Duration) {
	defer close(a.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.Flush()
		}
	}
}

// Write buffers p (after Close it writes p through).
func (a *AuditWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.buf.Available() < len(p) && a.buf.Buffered() > 0 {
		if err := a.flushLocked(); err != nil {
			return 0, err
		}
	}
	n, err := a.buf.Write(p)
	if err != nil {
		a.buf.Reset(a.w)
		return n, err
	}
	if a.closed || a.buf.Size() < auditBufferSize {
		err = a.flushLocked()
	}
	return n, err
}

// flushLocked writes the buffered lines. A failed write (a full disk, a
// closed pipe) drops them and is returned, but does not stick: bufio keeps
// its first error forever, which would silently end audit logging for the
// life of the process; the next lines are tried again.
func (a *AuditWriter) flushLocked() error {
	err := a.buf.Flush()
	if err != nil {
		a.buf.Reset(a.w)
	}
	return err
}

// Flush writes the buffered lines.
func (a *AuditWriter) Flush() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flushLocked()
}

// Close stops the interval flushes and writes what is buffered. It does not
// close the underlying writer.
func (a *AuditWriter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	select {
	case <-a.done:
	default:
		close(a.stop)
		<-a.done
	}
	return a.Flush()
}
