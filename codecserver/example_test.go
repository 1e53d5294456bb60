package codecserver_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

func ExampleNew() {
	// keyringtest holds random in-memory keys: never use it for real data.
	c, _ := codec.New(keyringtest.New(), codec.Options{})
	srv, err := codecserver.New(codecserver.Config{
		Codec:           c,
		Unauthenticated: true, // loopback development only; configure JWT in production
		CORSOrigins:     []string{"http://localhost:8233"},
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	body := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"ImhpIg=="}]}`
	resp, err := http.Post(hs.URL+"/default/decode", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Cache-Control"))
	fmt.Println(string(out)) // a payload that is not encrypted passes through
	// Output:
	// 200 no-store
	// {"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"ImhpIg=="}]}
}

func ExampleCORS() {
	_, err := codecserver.CORS([]string{"*"}, 0)
	fmt.Println(err != nil)
	o, _ := codecserver.NormalizeOrigin("HTTPS://Temporal.Example.com:443/")
	fmt.Println(o)
	// Output:
	// true
	// https://temporal.example.com
}
