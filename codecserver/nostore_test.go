package codecserver_test

import (
	"net/http"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

func TestCacheControlNoStoreOnEveryAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{mutate: func(c *codecserver.Config) { c.MaxBodyBytes = 64 }})
	read := map[string]string{"Authorization": e.bearer("default:read"), "Origin": uiOrigin}
	for _, tt := range []struct {
		name string
		c    call
		want int
	}{
		{"a decode", call{path: "/decode", body: []byte(`{"payloads":[]}`), headers: read}, 200},
		{"a decode without a token", call{path: "/default/decode", body: []byte(`{}`)}, 401},
		{"an encode over the body limit", call{path: "/encode", body: body(t, plainPayloads(1, 100)), headers: read}, 413},
		{"GET /decode", call{method: http.MethodGet, path: "/decode"}, 405},
		{"an unknown route", call{method: http.MethodGet, path: "/x/y/z"}, 404},
		{"a preflight", call{method: http.MethodOptions, path: "/decode", headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "POST"}}, 204},
		{"the health check", call{method: http.MethodGet, path: "/healthz"}, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do(tt.c)
			if a.status != tt.want {
				t.Fatalf("status %d (%s), want %d", a.status, a.errText, tt.want)
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
		})
	}
}
