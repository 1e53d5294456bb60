package codec_test

import (
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestNewRefusesSubjectWithoutSubjectKeys: Options.Subject over a keyring
// that holds no data subject keys fails at New, not at the first payload
// of a data subject.
func TestNewRefusesSubjectWithoutSubjectKeys(t *testing.T) {
	t.Parallel()
	_, err := codec.New(keyringtest.New(), codec.Options{Subject: func(converter.SerializationContext) string { return "customer-1" }})
	if err == nil || !strings.Contains(err.Error(), "data subject") {
		t.Fatalf("New = %v, want an error about data subject keys", err)
	}
}
