package codecserver_test

import (
	"slices"
	"sync"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
)

// TestChainIsBoundToTheDefaultNamespaceOnce: requests for the default
// namespace (most of them: the CLI's, the UI's) share one binding of the
// chain; every other namespace is still bound per request, and each
// request's payloads reach the codecs under its own namespace.
func TestChainIsBoundToTheDefaultNamespaceOnce(t *testing.T) {
	t.Parallel()
	rev := newReverseCodec()
	e := newEnv(t, envOptions{noAuth: true, mutate: func(c *codecserver.Config) {
		c.Codecs = []converter.PayloadCodec{c.Codec, rev, codec.NewZlib(codec.ZlibOptions{})}
		c.Codec = nil
	}})
	encode := func(ns string) []byte {
		a := e.do(call{path: "/encode", body: body(t, plainPayloads(1, 16)), headers: map[string]string{"X-Namespace": ns}})
		if a.status != 200 {
			t.Fatalf("encode in %q: %d %s", ns, a.status, a.errText)
		}
		return body(t, a.payloads(t))
	}
	sealed := map[string][]byte{"default": encode("default"), "payments": encode("payments")}
	var wg sync.WaitGroup
	for _, ns := range []string{"default", "", "default", "payments", "default", "payments"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := ns
			if want == "" {
				want = "default"
			}
			if a := e.do(call{path: "/decode", body: sealed[want], headers: map[string]string{"X-Namespace": ns}}); a.status != 200 {
				t.Errorf("decode in %q: %d %s", ns, a.status, a.errText)
			}
		}()
	}
	wg.Wait()
	// A payload sealed for payments is refused in default: the shared
	// binding is default's, not the last request's.
	if a := e.do(call{path: "/decode", body: sealed["payments"], headers: map[string]string{"X-Namespace": "default"}}); a.status == 200 {
		t.Error("a payload sealed for payments decoded in default")
	}
	nss := rev.namespaces()
	if n := len(slices.DeleteFunc(slices.Clone(nss), func(ns string) bool { return ns != "default" })); n != 1 {
		t.Errorf("the chain was bound to default %d times, want once (all: %q)", n, nss)
	}
	if n := len(slices.DeleteFunc(slices.Clone(nss), func(ns string) bool { return ns != "payments" })); n != 3 {
		t.Errorf("the chain was bound to payments %d times, want 3, one per request (all: %q)", n, nss)
	}
}
