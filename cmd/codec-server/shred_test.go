package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

func TestShredCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keys, sdir := filepath.Join(dir, "k.json"), filepath.Join(dir, "subjects")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A server on a folder that is not an initialised store refuses to
	// start, with one line naming the command that creates one.
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, folder := range []string{sdir, empty} {
		out, errOut, code := runBinary(t, dir, nil, "--listen", "127.0.0.1:0", "--keys-file", keys, "--subject-store", "dir", "--subject-dir", folder)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		last := lines[len(lines)-1]
		if code == 0 || !strings.HasPrefix(last, "codec-server: ") || !strings.Contains(last, "not an initialised data subject key store") || !strings.Contains(last, "codec-server keys init-subject-store") {
			t.Fatalf("server on the uninitialised folder %s: exit %d, stdout %q, stderr %q; want one line naming keys init-subject-store", folder, code, out, errOut)
		}
	}
	if _, err := os.Stat(sdir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the server created the store folder: %v", err)
	}
	out, errOut, code := runBinary(t, dir, nil, "keys", "init-subject-store", "--subject-store", "dir", "--subject-dir", sdir)
	if code != 0 || !strings.Contains(out, "created the dir data subject key store") {
		t.Fatalf("keys init-subject-store: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, _, code := runBinary(t, dir, nil, "keys", "init-subject-store", "--subject-store", "dir", "--subject-dir", sdir); code == 0 {
		t.Fatal("keys init-subject-store ran twice on one folder")
	}
	// A worker seals two customers' payloads.
	f, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := subject.NewDir(sdir)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(f, store, subject.Options{})
	worker, _ := codec.New(kr, codec.Options{})
	seal := func(subj, text string) *commonpb.Payload {
		out, err := worker.ForSubject(subj).Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + text + `"`)}})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	alice, bob := seal("customer-1", "alice"), seal("customer-2", "bob")
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{alice, bob}})

	decode := func() (int, string, []string) {
		m := NewMain()
		m.Stderr = io.Discard
		m.LookupEnv = func(string) (string, bool) { return "", false }
		if err := m.ParseFlags(context.Background(), []string{"--listen", "127.0.0.1:0", "--keys-file", keys, "--subject-store", "dir", "--subject-dir", sdir, "--metrics=false", "--audit=false"}); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		resp, err := http.Post(m.URL()+"/decode", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out commonpb.Payloads
		protojson.Unmarshal(b, &out)
		var texts []string
		for _, p := range out.Payloads {
			texts = append(texts, string(p.Data))
		}
		return resp.StatusCode, resp.Header.Get(codecserver.ErasedHeader), texts
	}
	if status, erased, texts := decode(); status != 200 || erased != "" || strings.Join(texts, ",") != `"alice","bob"` {
		t.Fatalf("decode before shred: %d %q %v", status, erased, texts)
	}

	audit := filepath.Join(dir, "audit.jsonl")
	shred := []string{"keys", "shred", "--namespace", "default", "--subject", "customer-1", "--subject-store", "dir", "--subject-dir", sdir, "--audit-log", audit, "--reference", "TICKET-123"}
	out, errOut, code = runBinary(t, dir, []string{"USER=dpo"}, shred...)
	h1, _ := kr.Handle(context.Background(), "default", "customer-1")
	if code != 0 || !strings.Contains(out, "shredded the key of data subject handle "+h1) || strings.Contains(out+errOut, "customer-1") {
		t.Fatalf("keys shred: exit %d, stdout %q, stderr %q; want the handle %s and never the subject ID", code, out, errOut, h1)
	}
	line, _ := os.ReadFile(audit)
	for _, want := range []string{`"msg":"data subject key shredded"`, `"handle":"` + h1 + `"`, `"namespace":"default"`, `"reference":"TICKET-123"`, `"result":"shredded"`, `"by":"dpo"`, `"store":"dir"`, `"store_id":"` + store.ID() + `"`} {
		if !bytes.Contains(line, []byte(want)) {
			t.Errorf("audit line %s lacks %s", line, want)
		}
	}
	if bytes.Contains(line, []byte("customer-1")) {
		t.Errorf("audit line names the subject without --record-subject: %s", line)
	}
	// A restarted server shows the rest and marks the erased payload.
	if status, erased, texts := decode(); status != 200 || erased != "1" || strings.Join(texts, ",") != `"`+codecserver.ErasedText+`","bob"` {
		t.Fatalf("decode after shred: %d %q %v", status, erased, texts)
	}
	// Workers get the error.
	fresh, _ := codec.New(kr, codec.Options{})
	if _, err := fresh.Decode([]*commonpb.Payload{alice}); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("worker decode after shred: %v, want ErrErased", err)
	}

	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"shredding again finds no key", shred, 0, "had no key"},
		{"no namespace", []string{"keys", "shred", "--subject", "customer-2", "--subject-store", "dir", "--subject-dir", sdir}, 2, ""},
		{"no subject", []string{"keys", "shred", "--namespace", "default", "--subject-store", "dir", "--subject-dir", sdir}, 2, ""},
		{"no store", []string{"keys", "shred", "--namespace", "default", "--subject", "customer-2"}, 2, ""},
		{"an unknown store", []string{"keys", "shred", "--namespace", "default", "--subject", "customer-2", "--subject-store", "s3"}, 2, ""},
		{"a bad subject ID", []string{"keys", "shred", "--namespace", "default", "--subject", "../k", "--subject-store", "dir", "--subject-dir", sdir}, 2, ""},
		{"an uninitialised store", []string{"keys", "shred", "--namespace", "default", "--subject", "customer-2", "--subject-store", "dir", "--subject-dir", dir}, 1, ""},
	} {
		out, errOut, code := runBinary(t, dir, nil, tc.args...)
		if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q", tc.name, code, out, errOut, tc.wantCode, tc.wantOut)
		}
	}
	h2, _ := kr.Handle(context.Background(), "default", "customer-2")
	if _, err := os.Stat(filepath.Join(sdir, h2+".key")); err != nil {
		t.Errorf("the other customer's key: %v", err)
	}
	// The shred sticks until re-admitted.
	w2, _ := codec.New(kr, codec.Options{})
	if _, err := w2.ForSubject("customer-1").Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}); !errors.Is(err, codec.ErrErased) {
		t.Fatalf("seal after the shred: %v, want ErrErased", err)
	}
	readmit := []string{"keys", "readmit", "--namespace", "default", "--subject", "customer-1", "--subject-store", "dir", "--subject-dir", sdir, "--audit-log", audit, "--reference", "TICKET-124"}
	if out, errOut, code := runBinary(t, dir, nil, readmit...); code != 0 || !strings.Contains(out, "re-admitted data subject handle "+h1) {
		t.Fatalf("keys readmit: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !bytes.Contains(must(os.ReadFile(audit)), []byte(`"msg":"data subject re-admitted"`)) {
		t.Error("no audit line for the re-admission")
	}
	w3, _ := codec.New(kr, codec.Options{})
	if _, err := w3.ForSubject("customer-1").Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}); err != nil {
		t.Fatalf("seal after the re-admission: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestShredNeverQuotesAStrayArgument: a subject ID with a space passed
// unquoted leaves its second word as an argument; the refusal counts the
// stray arguments and never prints them (they may be personal data).
func TestShredNeverQuotesAStrayArgument(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range []string{"shred", "readmit"} {
		out, errOut, code := runBinary(t, dir, nil, "keys", cmd, "--namespace", "orders", "--subject-store", "dir", "--subject-dir", filepath.Join(dir, "s"), "--subject", "Ada", "Lovelace@example.com")
		if code != 2 || strings.Contains(out+errOut, "Lovelace") || !strings.Contains(errOut, "1 unexpected arguments") {
			t.Errorf("keys %s with a stray argument: exit %d, stdout %q, stderr %q; want 2, counting it without quoting it", cmd, code, out, errOut)
		}
	}
}
