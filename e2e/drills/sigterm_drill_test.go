//go:build drill

package drills

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/loadgen"
)

// TestDrillSIGTERMUnderLoad: the codec server gets SIGTERM while the load
// runs. Requests in flight finish with their answer, the server exits 0,
// every answered request has one complete audit line (no line cut off,
// none missing), and every payload it sealed decodes afterwards. Requests
// sent after the listener closed find no server: behind one address,
// another replica must take them (docs/OPERATIONS.md).
func TestDrillSIGTERMUnderLoad(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	d := startDrill(t, drillOptions{keysFile: true, extraArgs: []string{"--audit-log", audit}})
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		samples = map[string][]loadgen.Sample{}
	)
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := loadgen.Paced(ctx, st.rate*d.s.rate*4, maxInFlight, func(ctx context.Context, seq int) loadgen.Sample {
				return d.request(ctx, st.kind, seq)
			})
			mu.Lock()
			samples[st.kind] = s
			mu.Unlock()
		}()
	}
	time.Sleep(d.s.before)
	term := time.Now()
	if err := d.cs.Process().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	exitErr := d.cs.Process().Wait(wctx)
	wcancel()
	exited := time.Now()
	time.Sleep(time.Second)
	cancel()
	wg.Wait()

	var sent, answered, inFlight, lostBefore, refusedAfter, badAnswers int
	for _, st := range streams {
		for _, s := range samples[st.kind] {
			sent++
			if s.Status != 0 {
				answered++
			}
			if s.Start.Before(term) && s.Start.Add(s.Latency).After(term) {
				inFlight++
			}
			switch {
			case s.Status != 0 && (s.Status != 200 || s.Err != nil):
				badAnswers++
				t.Errorf("%s at %s: answered %d %v", st.kind, s.Start.Format(time.StampMilli), s.Status, s.Err)
			case s.Status == 0 && s.Start.Before(term):
				lostBefore++
			case s.Status == 0:
				refusedAfter++
			}
		}
	}
	lines := auditLines(t, audit)
	t.Logf("SIGTERM under load: %d sent, %d in flight at SIGTERM, %d answered (all 200: %v), %d sent before SIGTERM without an answer, %d sent after SIGTERM found no server; exit %v after %s; %d audit lines",
		sent, inFlight, answered, badAnswers == 0, lostBefore, refusedAfter, exitErr, exited.Sub(term).Round(time.Millisecond), lines)
	if exitErr != nil {
		t.Errorf("codec server exit: %v, want 0", exitErr)
	}
	if lostBefore != 0 {
		t.Errorf("%d requests sent before SIGTERM got no answer", lostBefore)
	}
	// The warm-up sent 2 requests per warm namespace.
	if want := answered + 2*warmNamespaces; lines != want {
		t.Errorf("%d complete audit lines, want one per answered request: %d", lines, want)
	}
	if bad := d.checkNoDataLoss(0); bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
	if path := os.Getenv("DRILL_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		json.NewEncoder(f).Encode(map[string]any{"drill": "SIGTERM", "sent": sent, "in_flight": inFlight, "answered": answered, "bad_answers": badAnswers,
			"no_answer_before": lostBefore, "no_server_after": refusedAfter, "exit_after_ms": exited.Sub(term).Milliseconds(), "audit_lines": lines})
	}
}

// auditLines counts the audit log's lines, failing the test on a line
// that is not one complete JSON object or a last line without newline.
func auditLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the audit log ends in a line cut off: %q", b[max(0, len(b)-80):])
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("audit line %d is not complete JSON: %q", n+1, sc.Text())
		}
		n++
	}
	return n
}
