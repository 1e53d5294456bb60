//go:build drill

package drills

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/loadgen"
	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestDrillSIGTERMUnderLoad: the codec server (alone, --shutdown-delay
// 5s, the default) gets SIGTERM while the load runs. It drains: requests
// sent before SIGTERM and during the delay are answered; then it closes
// its listener, requests in flight finish, it exits 0, every answered
// request has one complete audit line (no line cut off, none missing), and
// every payload it sealed decodes afterwards. Requests sent after the
// listener closed find no server: behind one address, another replica
// must take them (TestDrillSIGTERMOneOfTwoReplicas).
func TestDrillSIGTERMUnderLoad(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	d := startDrill(t, drillOptions{keysFile: true, extraArgs: []string{"--audit-log", audit, "--shutdown-delay", "5s"}})
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

	var sent, answered, inFlight, lostBefore, answeredAfter, refusedAfter, badAnswers int
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
			case !s.Start.Before(term):
				answeredAfter++
			}
		}
	}
	lines := auditLines(t, audit)
	t.Logf("SIGTERM under load: %d sent, %d in flight at SIGTERM, %d answered (all 200: %v), %d sent before SIGTERM without an answer, %d sent after SIGTERM answered (the drain), %d sent after SIGTERM found no server (after the listener closed); exit %v after %s; %d audit lines",
		sent, inFlight, answered, badAnswers == 0, lostBefore, answeredAfter, refusedAfter, exitErr, exited.Sub(term).Round(time.Millisecond), lines)
	if answeredAfter == 0 {
		t.Error("no request sent after SIGTERM was answered: no drain")
	}
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
			"no_answer_before": lostBefore, "answered_after": answeredAfter, "no_server_after": refusedAfter, "exit_after_ms": exited.Sub(term).Milliseconds(), "audit_lines": lines})
	}
}

// auditLines counts the audit log's lines, failing the test on a line
// that is not one complete JSON object or a last line without newline.
func auditLines(t *testing.T, path string) int { return len(auditTimes(t, path)) }

// auditTimes returns the request start time of each line of the audit log,
// failing the test on a line that is not one complete JSON object with a
// time, or a last line without newline.
func auditTimes(t *testing.T, path string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the audit log ends in a line cut off: %q", b[max(0, len(b)-80):])
	}
	var times []time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.Time.IsZero() {
			t.Errorf("audit line %d is not complete JSON with a time: %q", len(times)+1, sc.Text())
		}
		times = append(times, m.Time)
	}
	return times
}

// TestDrillSIGTERMOneOfTwoReplicas: two codec server replicas
// (--shutdown-delay 5s) behind one address, a TCP load balancer that
// checks each replica's /readyz every second and sends new connections
// only to those answering 200 (open connections stay, as with a
// Kubernetes Service). One replica gets SIGTERM under load: it drains
// (/readyz 503 while it serves on), the balancer takes it out of the pool,
// it closes its listener and exits 0, its audit log complete. No request
// fails, of any kind, and every payload sealed decodes afterwards.
func TestDrillSIGTERMOneOfTwoReplicas(t *testing.T) {
	const delay = 5 * time.Second
	d := startDrill(t, drillOptions{keysFile: true})
	dir := t.TempDir()
	var (
		replicas []*testenv.CodecServer
		audits   []string
		pool     []string
	)
	for i := range 2 {
		audit := filepath.Join(dir, fmt.Sprintf("audit-%d.jsonl", i))
		args := append(slices.Clone(d.args), "--audit-log", audit, "--shutdown-delay", delay.String())
		cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: args})
		replicas, audits, pool = append(replicas, cs), append(audits, audit), append(pool, strings.TrimPrefix(cs.URL, "http://"))
	}
	lb := testenv.StartTCPProxy(t, pool[0])
	lb.Balance(pool...)
	d.loadURL = "http://" + lb.Addr

	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan time.Time, 1)
	checked := make(chan struct{}, 1)
	lbDone := make(chan struct{})
	go func() {
		defer close(lbDone)
		balanceReplicas(ctx, t, lb, replicas, pool, checked, left)
	}()
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
	// SIGTERM right after a health check: the balancer sees the 503 a
	// whole interval later, the slowest case.
	select {
	case <-checked:
	default:
	}
	<-checked
	term := time.Now()
	if err := replicas[0].Process().Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	exitErr := replicas[0].Process().Wait(wctx)
	wcancel()
	exited := time.Now()
	time.Sleep(2 * time.Second) // the other replica alone
	cancel()
	wg.Wait()
	<-lbDone
	var leftAt time.Time
	select {
	case leftAt = <-left:
	default:
	}
	// The other replica stops too, so that its audit log is complete.
	replicas[1].Process().Stop()

	var sent, inFlight int
	var all []loadgen.Sample
	for _, st := range streams {
		all = append(all, samples[st.kind]...)
		for _, s := range samples[st.kind] {
			sent++
			if s.Start.Before(term) && s.Start.Add(s.Latency).After(term) {
				inFlight++
			}
			if failed(s) {
				t.Errorf("%s at %s: %d %v", st.kind, s.Start.Format(time.StampMilli), s.Status, s.Err)
			}
		}
	}
	var before, draining []loadgen.Sample
	for _, s := range all {
		switch {
		case s.Start.Before(term):
			before = append(before, s)
		case s.Start.Before(exited):
			draining = append(draining, s)
		}
	}
	lines0, lines1 := auditTimes(t, audits[0]), auditTimes(t, audits[1])
	servedDraining := 0
	for _, at := range lines0 {
		if !at.Before(term) {
			servedDraining++
		}
	}
	out := replicas[0].Output()
	t.Logf("SIGTERM to one of two replicas under load: %d sent, failed %s, %d in flight at SIGTERM; p99 %s ms before SIGTERM, %s ms from SIGTERM to the exit; "+
		"the balancer took the replica out %s after SIGTERM; the replica served %d requests after SIGTERM, exited %v after %s; audit lines %d + %d",
		sent, fmtFailures(failures(all)), inFlight, ms(p99(before)), ms(p99(draining)),
		leftAt.Sub(term).Round(time.Millisecond), servedDraining, exitErr, exited.Sub(term).Round(time.Millisecond), len(lines0), len(lines1))
	t.Logf("the SIGTERMed replica's log from the signal:\n%s", out[strings.Index(out, "signal received"):])
	if exitErr != nil {
		t.Errorf("the SIGTERMed replica's exit: %v, want 0", exitErr)
	}
	if leftAt.IsZero() {
		t.Error("the balancer never saw /readyz fail on the SIGTERMed replica")
	}
	if servedDraining == 0 {
		t.Error("the SIGTERMed replica served no request after SIGTERM: no drain under load")
	}
	for _, want := range []string{"draining: /readyz answers 503", "closing the listener", "codec server stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the SIGTERMed replica did not log %q", want)
		}
	}
	// Every request answered by exactly one replica, with one audit line.
	if got := len(lines0) + len(lines1); got != sent {
		t.Errorf("%d + %d audit lines, want one per request sent: %d", len(lines0), len(lines1), sent)
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
		json.NewEncoder(f).Encode(map[string]any{"drill": "SIGTERM, one of two replicas", "sent": sent, "failed": failures(all), "in_flight": inFlight,
			"p99_before_ms": ms(p99(before)), "p99_draining_ms": ms(p99(draining)), "out_of_pool_after_ms": leftAt.Sub(term).Milliseconds(),
			"served_after_sigterm": servedDraining, "exit_after_ms": exited.Sub(term).Milliseconds(), "audit_lines": []int{len(lines0), len(lines1)}})
	}
}

// balanceReplicas is the drill's load balancer: every second it checks
// each replica's /readyz and sends new connections only to those that
// answered 200 (to all of them when none did), signalling each round on
// checked and sending the time the first replica left the pool to left.
func balanceReplicas(ctx context.Context, t *testing.T, lb *testenv.TCPProxy, replicas []*testenv.CodecServer, addrs []string, checked chan<- struct{}, left chan<- time.Time) {
	client := &http.Client{Timeout: time.Second}
	in := make([]bool, len(replicas))
	for i := range in {
		in[i] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		var pool []string
		for i, cs := range replicas {
			status := 0
			if resp, err := client.Get(cs.URL + "/readyz"); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			ok := status == http.StatusOK
			if in[i] && !ok {
				t.Logf("load balancer: replica %d answered /readyz %d; out of the pool", i, status)
				if i == 0 {
					select {
					case left <- time.Now():
					default:
					}
				}
			}
			if in[i] = ok; ok {
				pool = append(pool, addrs[i])
			}
		}
		lb.Balance(pool...)
		select {
		case checked <- struct{}{}:
		default:
		}
	}
}
