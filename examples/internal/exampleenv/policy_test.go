package exampleenv_test

import (
	"flag"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/envelopecodec/envelope/examples/internal/exampleenv"
)

// TestDecodePolicyFlags: workers are where injected payloads do harm, so
// the examples take the codec server's --refuse-legacy and --refuse-v1 next
// to --require-encryption: with a legacy key in the file, anyone who knows
// the samples' static key can seal a payload that decodes as genuine.
func TestDecodePolicyFlags(t *testing.T) {
	var keys exampleenv.Keys
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	keys.Register(fs)
	if o := keys.CodecOptions(client.Options{}); o.RefuseLegacy || o.RefuseV1 {
		t.Fatalf("options %+v: refusals on by default", o)
	}
	if err := exampleenv.Parse(fs, []string{"--refuse-legacy", "--refuse-v1", "--require-encryption"}); err != nil {
		t.Fatal(err)
	}
	if o := keys.CodecOptions(client.Options{}); !o.RefuseLegacy || !o.RefuseV1 || !o.RequireEncryption {
		t.Errorf("options %+v, want RefuseLegacy, RefuseV1 and RequireEncryption", o)
	}
}
