//go:build drill

package drills

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// TestDrillHalfWrittenKeyFile: the key file is replaced in place by a
// half-written copy (as a copy that was cut off leaves it), then by a
// good file with a new active key. The server keeps the keys it loaded
// last (no request fails), says so in its log and its metrics, /readyz
// turns 503 after 3 failed reloads and 200 after the good file, the new
// key seals from then on, and nothing sealed is lost.
func TestDrillHalfWrittenKeyFile(t *testing.T) {
	d := startDrill(t, drillOptions{keysFile: true, extraArgs: []string{"--keys-reload", "1s"}})
	good, err := os.ReadFile(d.keysFile)
	if err != nil {
		t.Fatal(err)
	}
	// The next good file: the same keys plus a new active one.
	next := d.keysFile + ".next"
	if err := os.WriteFile(next, good, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := keyring.RotateFile(next, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nextBytes, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	var failingMetric string
	r := d.runLoad("key file half-written, then good", func() {
		if err := os.WriteFile(d.keysFile, good[:len(good)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}, func() time.Time {
		time.Sleep(d.s.fault)
		failingMetric = metricLine(t, d.cs.URL, "codec_server_key_file_reload_failures ")
		if err := os.WriteFile(d.keysFile, nextBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	})
	bad := d.checkNoDataLoss(0)
	d.report(r, bad)
	for _, st := range streams {
		if f := failures(r.samples[st.kind]); len(f) > 0 {
			t.Errorf("%s: %s failed; want none: the server keeps the keys it loaded last", st.kind, fmtFailures(f))
		}
	}
	if !r.readyWent503 || !r.ready200 {
		t.Errorf("/readyz: went 503 during the fault: %v, 200 at the end: %v", r.readyWent503, r.ready200)
	}
	if failingMetric == "" || strings.HasSuffix(failingMetric, " 0") {
		t.Errorf("during the fault /metrics showed %q, want reload failures above 0", failingMetric)
	}
	if got := metricLine(t, d.cs.URL, "codec_server_key_file_reload_failures "); got != "codec_server_key_file_reload_failures 0" {
		t.Errorf("after the good file /metrics shows %q, want 0", got)
	}
	if !strings.Contains(d.cs.Output(), "key file reload failed; keeping the keys loaded before") {
		t.Error("the server did not log the failed reloads")
	}
	if sp, status, err := d.encode(t.Context(), d.cs.URL, "ns-0", "after"); err != nil || status != 200 || !strings.Contains(string(sp.payload.Metadata["encryption-key-id"]), info.ID) {
		t.Errorf("after the good file, an encode (%d %v) is sealed under %q, want the new key %s", status, err, sp.payload.GetMetadata()["encryption-key-id"], info.ID)
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// metricLine returns the first line of url's /metrics starting with prefix.
func metricLine(t *testing.T, url, prefix string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}
