package codecserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
)

// TestCrossNamespaceDecodeIsForbidden: a payload sealed through
// /payments/encode, posted to /sandbox/decode with a token that may read
// sandbox, gets 403, no plaintext, and an audit line naming both
// namespaces. The keyring (the in-memory fake) has one key for all
// namespaces, as a key file does.
func TestCrossNamespaceDecodeIsForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	plain := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"card 4111-SECRET"`)}}
	enc := e.do(call{path: "/payments/encode", body: body(t, plain), headers: map[string]string{"Authorization": e.bearer("payments:write")}})
	if enc.status != 200 {
		t.Fatalf("encode: %d %s", enc.status, enc.body)
	}
	sealed := body(t, enc.payloads(t))
	reader := e.bearer("sandbox:read")
	for _, c := range []call{
		{path: "/sandbox/decode", body: sealed, headers: map[string]string{"Authorization": reader}},
		{path: "/decode", body: sealed, headers: map[string]string{"Authorization": reader, "X-Namespace": "sandbox"}},
	} {
		a := e.do(c)
		if a.status != http.StatusForbidden {
			t.Fatalf("%s: %d %s, want 403", c.path, a.status, a.body)
		}
		if !strings.Contains(a.errText, `"payments"`) || !strings.Contains(a.errText, `"sandbox"`) {
			t.Errorf("error %q does not name both namespaces", a.errText)
		}
		if strings.Contains(string(a.body), "SECRET") {
			t.Errorf("response holds plaintext: %s", a.body)
		}
	}
	// The same payload through its own namespace still decodes.
	ok := e.do(call{path: "/payments/decode", body: sealed, headers: map[string]string{"Authorization": e.bearer("payments:read")}})
	if ok.status != 200 || !strings.Contains(string(ok.body), "ImNhcmQgNDExMS1TRUNSRVQi") {
		t.Fatalf("decode in payments: %d %s", ok.status, ok.body)
	}
	if strings.Contains(e.log.String(), "SECRET") || strings.Contains(e.audit.String(), "SECRET") {
		t.Error("plaintext in the server or audit log")
	}
	var found int
	for _, line := range strings.Split(e.audit.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["route"] != "decode" {
			continue
		}
		if m["status"] == 403.0 {
			found++
			if m["namespace"] != "sandbox" || m["sealed_namespace"] != "payments" || m["outcome"] != "namespace_mismatch" {
				t.Errorf("audit line of the refused decode: %s", line)
			}
		}
		if m["status"] == 200.0 && m["sealed_namespace"] != nil {
			t.Errorf("a successful decode names a sealed namespace: %s", line)
		}
	}
	if found != 2 {
		t.Errorf("%d audit lines for the refused decodes, want 2:\n%s", found, e.audit.String())
	}
}

// TestNamespaceAliasThroughServer: with an alias declared in the codec's
// options, the migrated namespace opens the old one's payloads through the
// server; the reverse stays forbidden.
func TestNamespaceAliasThroughServer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{mutate: func(cfg *codecserver.Config) {
		c, err := codec.New(cfg.Keyring, codec.Options{NamespaceAliases: map[string][]string{"payments.acct": {"payments"}}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Codec = c
	}})
	old := body(t, e.sealed("payments", 2))
	a := e.do(call{path: "/payments.acct/decode", body: old, headers: map[string]string{"Authorization": e.bearer("payments.acct:read")}})
	if a.status != 200 || len(a.payloads(t)) != 2 {
		t.Fatalf("alias decode: %d %s", a.status, a.body)
	}
	newer := body(t, e.sealed("payments.acct", 1))
	if a := e.do(call{path: "/payments/decode", body: newer, headers: map[string]string{"Authorization": e.bearer("payments:read")}}); a.status != 403 {
		t.Fatalf("reverse alias: %d %s, want 403", a.status, a.body)
	}
}

func TestClassifyNamespaceAndPolicyErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err    error
		status int
		reason string
	}{
		{fmt.Errorf("codec: decode payload 3: %w", &codec.NamespaceError{Sealed: "a", Decoding: "b"}), 403, "namespace_mismatch"},
		{fmt.Errorf("x: %w", codec.ErrNamespace), 403, "namespace_mismatch"},
		{fmt.Errorf("codec: decode payload 0: %w", codec.ErrNotEncrypted), 422, "not_encrypted"},
	} {
		status, reason, msg := codecserver.Classify(tt.err)
		if status != tt.status || reason != tt.reason || msg == "" {
			t.Errorf("Classify(%v) = %d %s %q, want %d %s", tt.err, status, reason, msg, tt.status, tt.reason)
		}
	}
}
