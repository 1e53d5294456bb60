package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestErasureWithStoreFromTheEnvironment: a data subject store set only in
// the environment (CODEC_SERVER_SUBJECT_STORE=dir, CODEC_SERVER_SUBJECT_DIR,
// no flags) makes the example worker and starter seal the customer's
// payloads under the customer's own key, so a later shred erases them;
// the namespace key seals none of them.
func TestErasureWithStoreFromTheEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, subjects := filepath.Join(dir, "keys.json"), filepath.Join(dir, "subjects")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := subject.InitDir(subjects); err != nil { // codec-server keys init-subject-store
		t.Fatal(err)
	}
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	e := env{temporal: tc, keyEnv: []string{
		"CODEC_SERVER_KEYS_FILE=" + keys,
		"CODEC_SERVER_SUBJECT_STORE=dir",
		"CODEC_SERVER_SUBJECT_DIR=" + subjects,
	}}
	s := newSecrets(t)
	startWorker(t, e, "tq-erasure-env")
	r := runStarter(t, e, "tq-erasure-env", s)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if res.Err != nil {
		t.Fatalf("%s", res)
	}
	assertNoPlaintext(t, "raw history", res.Stdout, s, 5)
	var doc any
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	handles := map[string]bool{}
	for i, p := range payloads(doc) {
		id := string(b64(p["metadata"].(map[string]any)["encryption-key-id"]))
		h, _, _ := strings.Cut(strings.TrimPrefix(id, "subject/dir/"), "/")
		if !strings.HasPrefix(id, "subject/dir/") || len(h) != 32 || strings.Contains(strings.ToLower(id), strings.ToLower(s.CustomerID)) {
			t.Errorf("payload %d has key ID %q, want the customer's key subject/dir/<handle>/...", i, id)
		}
		handles[h] = true
	}
	if len(handles) != 1 {
		t.Errorf("the customer's payloads are under %d subject keys, want 1: %v", len(handles), handles)
	}
	for h := range handles {
		if _, err := os.Stat(filepath.Join(subjects, h+".key")); err != nil {
			t.Errorf("the customer's key in the store: %v", err)
		}
	}
}
