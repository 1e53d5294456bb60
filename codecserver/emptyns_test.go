package codecserver_test

import (
	"slices"
	"testing"
)

// TestEmptyPathNamespaceIsTheDefault: the temporal CLI fills a
// {namespace} placeholder in --codec-endpoint with the -n value, which is
// empty without -n, so it calls //decode. That is the default namespace,
// as an empty X-Namespace is.
func TestEmptyPathNamespaceIsTheDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noAuth: true})
	for _, tt := range []struct {
		name    string
		path    string
		headers map[string]string
	}{
		{"//decode without a header", "//decode", nil},
		{"//decode with an empty header", "//decode", map[string]string{"X-Namespace": ""}},
		{"//decode with the default namespace in the header", "//decode", map[string]string{"X-Namespace": "default"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(call{path: tt.path, body: body(t, e.sealed("default", 2)), headers: tt.headers})
			if a.status != 200 {
				t.Fatalf("%s: %d %s", tt.path, a.status, a.errText)
			}
			if got := a.payloads(t); len(got) != 2 || string(got[0].Metadata["encoding"]) != "json/plain" {
				t.Errorf("not decoded: %v", got)
			}
		})
	}
	if nss := e.kr.namespaces(); slices.ContainsFunc(nss, func(ns string) bool { return ns != "default" }) {
		t.Errorf("keyring asked for %q, want only default", nss)
	}
	if a := e.do(call{path: "//encode", body: body(t, plainPayloads(1, 8))}); a.status != 200 {
		t.Errorf("//encode: %d %s", a.status, a.errText)
	}
}
