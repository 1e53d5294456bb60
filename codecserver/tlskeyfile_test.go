package codecserver_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codecserver"
)

// TestTLSKeyInAFolderOthersCanWrite: the TLS private key follows the key
// file's rule: refused at start, and at reload (the old certificate stays),
// when others can write its folder without the sticky bit.
func TestTLSKeyInAFolderOthersCanWrite(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, k := newCA(t).issue(t, "srv", 90*24*time.Hour, true)
	writeFiles(t, dir, map[string][]byte{"c.pem": c, "k.pem": k})
	cr, err := codecserver.NewCertReloader(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := codecserver.NewCertReloader(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), nil, nil); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Fatalf("NewCertReloader = %v, want a refusal of the key's folder", err)
	}
	if _, err := cr.Reload(); err == nil || !strings.Contains(err.Error(), "no sticky bit") {
		t.Fatalf("Reload = %v, want a refusal of the key's folder", err)
	}
	if got, _ := cr.GetCertificate(nil); got == nil {
		t.Error("the refused reload dropped the certificate")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestAuditWriteErrorsAreCounted: a lost audit line shows in
// codec_server_audit_write_errors_total, also when a background flush of
// the AuditWriter loses it.
func TestAuditWriteErrorsAreCounted(t *testing.T) {
	t.Parallel()
	m := codecserver.NewMetrics()
	aw := codecserver.NewAuditWriter(m.CountAuditErrors(failingWriter{}), time.Hour)
	aw.Write([]byte(`{"msg":"audit"}` + "\n"))
	aw.Close()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "codec_server_audit_write_errors_total" {
			got = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got != 1 {
		t.Fatalf("codec_server_audit_write_errors_total = %v, want 1", got)
	}
}
