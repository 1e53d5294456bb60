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
	// A worker seals two customers' payloads.
	f, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := subject.NewDir(sdir)
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
	shred := []string{"keys", "shred", "--subject", "customer-1", "--subject-store", "dir", "--subject-dir", sdir, "--audit-log", audit}
	out, errOut, code := runBinary(t, dir, []string{"USER=dpo"}, shred...)
	if code != 0 || !strings.Contains(out, "shredded the key of data subject customer-1") {
		t.Fatalf("keys shred: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	line, _ := os.ReadFile(audit)
	for _, want := range []string{`"msg":"data subject key shredded"`, `"subject_id":"customer-1"`, `"result":"shredded"`, `"by":"dpo"`, `"store":"dir"`} {
		if !bytes.Contains(line, []byte(want)) {
			t.Errorf("audit line %s lacks %s", line, want)
		}
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
		{"no subject", []string{"keys", "shred", "--subject-store", "dir", "--subject-dir", sdir}, 2, ""},
		{"no store", []string{"keys", "shred", "--subject", "customer-2"}, 2, ""},
		{"an unknown store", []string{"keys", "shred", "--subject", "customer-2", "--subject-store", "s3"}, 2, ""},
		{"a bad subject ID", []string{"keys", "shred", "--subject", "../k", "--subject-store", "dir", "--subject-dir", sdir}, 1, ""},
	} {
		out, errOut, code := runBinary(t, dir, nil, tc.args...)
		if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q", tc.name, code, out, errOut, tc.wantCode, tc.wantOut)
		}
	}
	if _, err := os.Stat(filepath.Join(sdir, "customer-2.key")); err != nil {
		t.Errorf("the other customer's key: %v", err)
	}
}
