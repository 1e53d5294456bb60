package codecserver_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codecserver"
)

// countingWriter counts Write calls (each one a system call on a file).
type countingWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *countingWriter) get() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String(), w.writes
}

func TestAuditWriterBatchesAndLosesNothingOnClose(t *testing.T) {
	t.Parallel()
	var under countingWriter
	aw := codecserver.NewAuditWriter(&under, time.Hour) // only size and Close flush here
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 250 {
				fmt.Fprintf(aw, "{\"g\":%d,\"i\":%d,\"pad\":%q}\n", g, i, strings.Repeat("x", 40))
			}
		}()
	}
	wg.Wait()
	_, writes := under.get()
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	out, total := under.get()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2000 {
		t.Fatalf("%d lines after Close, want 2000", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"g":`) || !strings.HasSuffix(l, `"}`) {
			t.Fatalf("torn line %q", l)
		}
	}
	if total > 5 {
		t.Errorf("2,000 lines (~150 KiB) took %d writes (%d before Close), want a few 64 KiB batches", total, writes)
	}
	// After Close, lines go straight through.
	fmt.Fprintln(aw, "late")
	if out, _ := under.get(); !strings.HasSuffix(out, "late\n") {
		t.Error("a line written after Close was not written through")
	}
}

func TestAuditWriterFlushesOnInterval(t *testing.T) {
	t.Parallel()
	var under countingWriter
	aw := codecserver.NewAuditWriter(&under, 10*time.Millisecond)
	defer aw.Close()
	fmt.Fprintln(aw, "one line")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, _ := under.get(); out == "one line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the buffered line was never flushed by the interval")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

func TestAuditWriterWithoutIntervalWritesThrough(t *testing.T) {
	t.Parallel()
	var under countingWriter
	aw := codecserver.NewAuditWriter(&under, 0)
	fmt.Fprintln(aw, "a")
	fmt.Fprintln(aw, "b")
	if out, n := under.get(); out != "a\nb\n" || n != 2 {
		t.Errorf("got %q in %d writes, want both lines at once", out, n)
	}
	aw.Close()
}

// failOnceWriter fails its first Write and then works.
type failOnceWriter struct {
	countingWriter
	failed bool
}

func (w *failOnceWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if !w.failed {
		w.failed = true
		w.mu.Unlock()
		return 0, fmt.Errorf("no space left on device")
	}
	w.mu.Unlock()
	return w.countingWriter.Write(p)
}

// TestAuditWriterRecoversFromAFailedWrite: one failed write (a full disk
// for a moment) loses the lines of that batch, not every later line.
// bufio.Writer keeps its first error forever; the writer must not.
func TestAuditWriterRecoversFromAFailedWrite(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{time.Hour, 0} {
		t.Run(interval.String(), func(t *testing.T) {
			var under failOnceWriter
			aw := codecserver.NewAuditWriter(&under, interval)
			fmt.Fprintln(aw, `{"line":1}`)
			if err := aw.Flush(); err == nil && interval > 0 {
				t.Fatal("Flush over a failing writer: no error")
			}
			fmt.Fprintln(aw, `{"line":2}`)
			if err := aw.Close(); err != nil {
				t.Fatalf("Close after the writer recovered: %v", err)
			}
			if out, _ := under.get(); !strings.Contains(out, `{"line":2}`) {
				t.Fatalf("after one failed write the next line was lost too; written: %q", out)
			}
		})
	}
}
