package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// history returns a document shaped like `temporal workflow show -o json`
// with the given payloads as the input of the first event.
func history(t *testing.T, ps ...*commonpb.Payload) string {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return `{"events":[{"eventId":"1","eventType":"EVENT_TYPE_WORKFLOW_EXECUTION_STARTED","workflowExecutionStartedEventAttributes":{"input":` + string(b) + `}}]}`
}

func TestDecodeCommand(t *testing.T) {
	t.Parallel()
	keys := keyringtest.SamplesKeyFile(t, "", "test")
	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	secret := func(s string) *commonpb.Payload {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"` + s + `"`)}
	}
	sealed, err := c.Encode([]*commonpb.Payload{secret("envelope-secret-4111")})
	if err != nil {
		t.Fatal(err)
	}
	contact, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"Contact":"Ada <ada@example.com>"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	binaryPlain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: []byte("raw bytes")}
	good := history(t, sealed[0], contact[0],
		keyringtestSamples(t, "", secret("samples-default-key-secret"), true),
		keyringtestSamples(t, "test", secret("samples-test-key-secret"), false),
		secret("already-plain"))
	tamperedSealed := clonePayload(t, sealed[0])
	tamperedSealed.Data[len(tamperedSealed.Data)-1] ^= 1
	dir := t.TempDir()
	goodFile := filepath.Join(dir, "history.json")
	os.WriteFile(goodFile, []byte(good), 0o600)

	for _, tt := range []struct {
		name        string
		args        []string
		stdin       string
		wantCode    int
		wantOut     []string
		wantErr     string
		errLines    int // lines on stderr; 0: do not check
		emptyStdout bool
	}{
		// The default view shows JSON payloads as their values, as the
		// temporal CLI's text views do: the strings as printed, quoted.
		{"a history file decodes", []string{"--keys-file", keys, goodFile}, "", 0,
			[]string{`"envelope-secret-4111"`, `"samples-default-key-secret"`, `"samples-test-key-secret"`, `"already-plain"`, `"Contact": "Ada <ada@example.com>"`}, "", 0, false},
		{"standard input decodes", []string{"--keys-file", keys}, good, 0, []string{`"envelope-secret-4111"`}, "", 0, false},
		{"- is standard input", []string{"--keys-file", keys, "-"}, good, 0, []string{`"samples-test-key-secret"`}, "", 0, false},
		{"JSON lines decode line by line", []string{"--keys-file", keys}, good + "\n" + good + "\n", 0, []string{`"envelope-secret-4111"`}, "", 0, false},
		{"a payload that is not JSON stays a payload", []string{"--keys-file", keys}, history(t, binaryPlain), 0,
			[]string{`"data": "` + base64.StdEncoding.EncodeToString(binaryPlain.Data) + `"`}, "", 0, false},
		// -o json is exact protojson for tools: the data in base64.
		{"-o json prints protojson", []string{"--keys-file", keys, "-o", "json"}, good, 0,
			[]string{`"data": "` + base64.StdEncoding.EncodeToString([]byte(`"envelope-secret-4111"`)) + `"`, `"encoding": "` + base64.StdEncoding.EncodeToString([]byte("json/plain")) + `"`}, "", 0, false},
		{"an unknown view is bad usage", []string{"--keys-file", keys, "--output", "yaml"}, good, 2, nil, "want text or json", 1, true},
		{"a tampered payload fails and names where it is", []string{"--keys-file", keys}, history(t, tamperedSealed), 1, nil,
			"events[0].workflowExecutionStartedEventAttributes.input.payloads[0]", 1, true},
		{"input that is not JSON fails in one line", []string{"--keys-file", keys}, "Progress: 3 events\n", 1, nil, "not JSON", 1, true},
		{"empty input fails in one line", []string{"--keys-file", keys}, "", 1, nil, "empty input", 1, true},
		{"a missing input file fails in one line", []string{"--keys-file", keys, filepath.Join(dir, "nope.json")}, "", 1, nil, "nope.json: no such file or directory", 1, true},
		{"no keyring is bad usage", nil, good, 2, nil, "no keyring", 1, true},
		{"a directory as key file fails in one line", []string{"--keys-file", dir}, good, 1, nil, "is a directory", 1, true},
		{"two input files are bad usage", []string{"--keys-file", keys, goodFile, goodFile}, "", 2, nil, "one input file", 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := runDecode(context.Background(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr, func(string) (string, bool) { return "", false })
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.wantCode, stderr.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String(), "YmluYXJ5L2VuY3J5cHRlZA==") || strings.Contains(stdout.String(), "YmluYXJ5L3psaWI=") {
				t.Errorf("output still has sealed or compressed payloads:\n%s", stdout.String())
			}
			if tt.wantErr != "" && !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.wantErr)
			}
			if n := strings.Count(strings.TrimSpace(stderr.String()), "\n") + 1; tt.errLines > 0 && n != tt.errLines {
				t.Errorf("stderr has %d lines, want %d:\n%s", n, tt.errLines, stderr.String())
			}
			if tt.emptyStdout && stdout.Len() > 0 {
				t.Errorf("printed output on failure:\n%s", stdout.String())
			}
		})
	}
}

func keyringtestSamples(t *testing.T, keyID string, p *commonpb.Payload, compressed bool) *commonpb.Payload {
	if compressed {
		return keyringtest.SealLikeSamplesCompressed(t, keyringtest.SamplesKey, keyID, p)
	}
	return keyringtest.SealLikeSamples(t, keyringtest.SamplesKey, keyID, p)
}

func clonePayload(t *testing.T, p *commonpb.Payload) *commonpb.Payload {
	b, err := protojson.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out commonpb.Payload
	if err := protojson.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
