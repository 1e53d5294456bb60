package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// documentedMetrics reads the metrics table of docs/OPERATIONS.md
// ("Metrics and alerts"): each metric name, and the label values its row
// lists in backquotes after a "reason"/"op"/"source"/"outcome" label.
func documentedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	rowRE := regexp.MustCompile("(?m)^\\| `(codec_server_[a-z_]+)` \\| (.*) \\|$")
	valueRE := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	for _, m := range rowRE.FindAllStringSubmatch(string(doc), -1) {
		var values []string
		if m[1] == "codec_server_failures_total" {
			for _, v := range valueRE.FindAllStringSubmatch(m[2], -1) {
				if v[1] != "reason" {
					values = append(values, v[1])
				}
			}
		}
		out[m[1]] = values
	}
	if len(out) < 8 {
		t.Fatalf("found %d metrics in the table of docs/OPERATIONS.md, want the whole table", len(out))
	}
	return out
}

// TestDocumentedMetricsExportedAtStart: every metric docs/OPERATIONS.md
// names is on /metrics of a server that has served nothing yet, at zero,
// with every documented failure reason, so alerts written from the docs
// see a series from the start. The key file reload series included, with
// reloading on (before its first reload) and off.
func TestDocumentedMetricsExportedAtStart(t *testing.T) {
	t.Parallel()
	want := documentedMetrics(t)
	for _, reload := range []string{"0", "1h"} {
		t.Run("keys-reload="+reload, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "keys.json")
			if _, err := keyring.CreateFile(file, time.Now()); err != nil {
				t.Fatal(err)
			}
			m := NewMain()
			m.Stderr = &syncWriter{w: &bytes.Buffer{}}
			m.LookupEnv = func(string) (string, bool) { return "", false }
			if err := m.ParseFlags(context.Background(), []string{"--listen", "127.0.0.1:0", "--keys-file", file, "--keys-reload", reload, "--audit=false"}); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			_, metrics := get(t, m.URL()+"/metrics")
			for name, values := range want {
				if name == "codec_server_tls_cert_expiry_timestamp_seconds" {
					continue // documented as exported only when serving TLS
				}
				if !regexp.MustCompile(`(?m)^` + name + `(_bucket)?[ {]`).MatchString(metrics) {
					t.Errorf("%s is not on /metrics at start", name)
				}
				for _, v := range values {
					series := name + `{reason="` + v + `"} 0`
					if !strings.Contains(metrics, series+"\n") {
						t.Errorf("%s is not on /metrics at start", series)
					}
				}
			}
			for _, series := range []string{
				`codec_server_key_file_reloads_total{outcome="ok"} 0`,
				`codec_server_key_file_reloads_total{outcome="error"} 0`,
				`codec_server_key_file_reload_failures 0`,
			} {
				if !strings.Contains(metrics, series+"\n") {
					t.Errorf("%s is not on /metrics at start:\n%s", series, grepLines(metrics, "key_file"))
				}
			}
		})
	}
}
