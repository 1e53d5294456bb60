package codec_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
)

// exampleKeyring creates a throwaway key file. Real deployments create one
// with `codec-server keys new --file F` or use Vault.
func exampleKeyring() (*keyring.File, func()) {
	dir, err := os.MkdirTemp("", "envelope-example")
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "keyring.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		log.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return kr, func() { os.RemoveAll(dir) }
}

func ExampleNew() {
	kr, cleanup := exampleKeyring()
	defer cleanup()

	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Wire it into clients and workers:
	//   client.Options{DataConverter: dc}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)

	p, err := dc.ToPayload("card 4111 1111 1111 1111")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(p.Metadata["encoding"]))

	var s string
	if err := dc.FromPayload(p, &s); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	// Output:
	// binary/encrypted
	// card 4111 1111 1111 1111
}

func ExampleCodec_Encode() {
	kr, cleanup := exampleKeyring()
	defer cleanup()
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := c.Encode([]*commonpb.Payload{{
		Metadata: map[string][]byte{"encoding": []byte("json/plain")},
		Data:     []byte(`{"name":"Ada"}`),
	}})
	if err != nil {
		log.Fatal(err)
	}
	md := sealed[0].Metadata
	fmt.Println(string(md["encoding"]), string(md["encryption-format"]), string(md["encryption-namespace"]))
	fmt.Println(string(md["encryption-key-id"]) == kr.ActiveKeyID())
	// Output:
	// binary/encrypted envelope/v2 default
	// true
}

func ExampleCodec_Decode() {
	kr, cleanup := exampleKeyring()
	defer cleanup()
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		log.Fatal(err)
	}
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`42`)}
	sealed, err := c.Encode([]*commonpb.Payload{plain})
	if err != nil {
		log.Fatal(err)
	}
	// Payloads that are not sealed (history from before encryption was
	// switched on) pass through unchanged.
	out, err := c.DecodeContext(context.Background(), []*commonpb.Payload{sealed[0], plain})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out[0].Data), string(out[1].Data))
	// Output: 42 42
}
