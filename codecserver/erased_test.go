package codecserver_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/temporalproto"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

func TestDecodeErasedPayloads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(keyringtest.New(), store, subject.Options{})
	worker, _ := codec.New(kr, codec.Options{})
	seal := func(subj, text string) *commonpb.Payload {
		out, err := worker.ForSubject(subj).EncodeContext(ctx, []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(strconv.Quote(text))}})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	alice, bob, ns := seal("customer-1", "alice@example.com"), seal("customer-2", "bob@example.com"), seal("", "report")
	tampered := protoClone(bob)
	tampered.Data[len(tampered.Data)-1] ^= 1

	var audit syncBuffer
	server, _ := codec.New(kr, codec.Options{})
	srv, err := codecserver.New(codecserver.Config{Codec: server, Unauthenticated: true, AuditLog: slog.New(slog.NewJSONHandler(&audit, nil)), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	post := func(ps ...*commonpb.Payload) (int, http.Header, []*commonpb.Payload) {
		b, _ := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
		resp, err := http.Post(ts.URL+"/decode", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		var out commonpb.Payloads
		if resp.StatusCode == 200 {
			if err := protojson.Unmarshal(rb, &out); err != nil {
				t.Fatalf("answer %s: %v", rb, err)
			}
		}
		return resp.StatusCode, resp.Header, out.Payloads
	}

	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-1"}); err != nil {
		t.Fatal(err)
	}
	status, h, out := post(alice, bob, ns, alice)
	if status != 200 || h.Get(codecserver.ErasedHeader) != "2" {
		t.Fatalf("decode with erased payloads: status %d, %s %q; want 200, 2", status, codecserver.ErasedHeader, h.Get(codecserver.ErasedHeader))
	}
	want := []string{strconv.Quote(codecserver.ErasedText), `"bob@example.com"`, `"report"`, strconv.Quote(codecserver.ErasedText)}
	for i, w := range want {
		if string(out[i].Data) != w {
			t.Errorf("payload %d: %s, want %s", i, out[i].Data, w)
		}
	}
	// The one metadata entry the Temporal CLI needs to print the text
	// (JSON payload shorthand): with any other it prints base64.
	if len(out[0].Metadata) != 1 || string(out[0].Metadata["encoding"]) != "json/plain" {
		t.Errorf("replacement metadata %v, want only encoding: json/plain", out[0].Metadata)
	}
	shown, err := temporalproto.CustomJSONMarshalOptions{Metadata: map[string]any{commonpb.EnablePayloadShorthandMetadataKey: true}}.Marshal(&commonpb.Payloads{Payloads: out[:1]})
	if err != nil || !strings.Contains(string(shown), strconv.Quote(codecserver.ErasedText)) {
		t.Errorf("the CLI's JSON printer shows the replacement as %s (%v), want the text %s", shown, err, strconv.Quote(codecserver.ErasedText))
	}
	if !strings.Contains(audit.String(), `"msg":"audit"`) || !strings.Contains(audit.String(), `"erased":2`) {
		t.Errorf("the audit line lacks \"erased\":2: %s", audit.String())
	}

	for _, tc := range []struct {
		name       string
		in         []*commonpb.Payload
		wantStatus int
		wantHeader string
	}{
		{"no erased payload: no header", []*commonpb.Payload{bob, ns}, 200, ""},
		{"an erased and a tampered payload: the request fails", []*commonpb.Payload{alice, tampered}, 422, ""},
	} {
		status, h, _ := post(tc.in...)
		if status != tc.wantStatus || h.Get(codecserver.ErasedHeader) != tc.wantHeader {
			t.Errorf("%s: status %d, header %q; want %d, %q", tc.name, status, h.Get(codecserver.ErasedHeader), tc.wantStatus, tc.wantHeader)
		}
	}
	if status, _, _ := classify(codec.ErrErased); status != http.StatusGone {
		t.Errorf("Classify(ErrErased) = %d, want 410", status)
	}
}

func classify(err error) (int, string, string) { return codecserver.Classify(err) }

func protoClone(p *commonpb.Payload) *commonpb.Payload {
	md := map[string][]byte{}
	for k, v := range p.Metadata {
		md[k] = v
	}
	return &commonpb.Payload{Metadata: md, Data: append([]byte(nil), p.Data...)}
}

// TestErasedCountInEveryAuditSink: the binary writes audit lines through
// AuditWriter, not AuditLog; the number of erased payloads must reach that
// sink too (it used to be logged only to AuditLog).
func TestErasedCountInEveryAuditSink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := subject.InitDir(filepath.Join(t.TempDir(), "subjects"))
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := subject.New(keyringtest.New(), store, subject.Options{})
	worker, _ := codec.New(kr, codec.Options{})
	sealed, err := worker.ForSubject("customer-9").EncodeContext(ctx, []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-9"}); err != nil {
		t.Fatal(err)
	}
	var audit syncBuffer
	server, _ := codec.New(kr, codec.Options{})
	srv, err := codecserver.New(codecserver.Config{Codec: server, Unauthenticated: true, AuditWriter: &audit, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	b, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	resp, err := http.Post(ts.URL+"/decode", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get(codecserver.ErasedHeader) != "1" {
		t.Fatalf("status %d, %s %q; want 200, 1", resp.StatusCode, codecserver.ErasedHeader, resp.Header.Get(codecserver.ErasedHeader))
	}
	if !strings.Contains(audit.String(), `"msg":"audit"`) || !strings.Contains(audit.String(), `"erased":1`) {
		t.Errorf("the AuditWriter line lacks \"erased\":1: %s", audit.String())
	}
}
