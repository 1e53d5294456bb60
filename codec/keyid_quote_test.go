package codec_test

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestLegacyKeyIDIsNeverQuotedWhole: a samples-format payload whose key ID
// is really a key (hex of 32 bytes, pasted in the wrong place) is refused
// without the whole ID in the error, whichever way it is refused.
func TestLegacyKeyIDIsNeverQuotedWhole(t *testing.T) {
	t.Parallel()
	secret := hex.EncodeToString([]byte("test-key-test-key-test-key-test!"))
	p := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(secret)},
		Data:     make([]byte, 40),
	}
	kf, err := keyring.OpenFile(keyringtest.SamplesKeyFile(t, "other"), keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kr   keyring.Keyring
		opts codec.Options
	}{{keyringtest.New(), codec.Options{}}, {kf, codec.Options{}}, {kf, codec.Options{RefuseLegacy: true}}} {
		opts := tc.opts
		c, err := codec.New(tc.kr, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DecodeContext(context.Background(), []*commonpb.Payload{p})
		if err == nil {
			t.Fatalf("RefuseLegacy=%v: decode of a samples payload without its key succeeded", opts.RefuseLegacy)
		}
		if strings.Contains(err.Error(), secret[:32]) {
			t.Errorf("RefuseLegacy=%v: error quotes the key ID beyond 16 bytes: %v", opts.RefuseLegacy, err)
		}
	}
}

// TestSubjectIDsStayOutOfCodecErrors: a data subject ID may be personal
// data; the codec's own errors do not repeat it (it used to quote it
// before even validating it).
func TestSubjectIDsStayOutOfCodecErrors(t *testing.T) {
	t.Parallel()
	const person = "alice@example.com"
	c, err := codec.New(keyringtest.New(), codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}}
	for _, subj := range []string{person, person + " with a space"} {
		_, err := c.ForSubject(subj).EncodeContext(context.Background(), p)
		if err == nil {
			t.Fatalf("encode for subject %q with a keyring without subject keys succeeded", subj)
		}
		if strings.Contains(err.Error(), person) {
			t.Errorf("error names the subject: %v", err)
		}
	}
}
