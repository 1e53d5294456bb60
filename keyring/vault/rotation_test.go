package vault_test

import (
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// TestVaultRotationReachesNewPayloadsPromptly rotates a transit key in a
// real Vault while a codec with default options holds a cached data key of
// version 1: within a few poll intervals new payloads must carry version 2,
// not for up to DataKeyMaxAge (an hour) more.
func TestVaultRotationReachesNewPayloadsPromptly(t *testing.T) {
	v := testenv.StartVault(t)
	v.CreateKey(t, "poll")
	kr := open(t, v, vault.Config{KeyName: "poll", KeyPollInterval: 200 * time.Millisecond})
	c := newCodec(t, kr, codec.Options{})
	if got := keyID(encode(t, c, payloads(1, "before"))[0]); got != "vault/transit/poll/v1" {
		t.Fatalf("key id before rotation %q", got)
	}
	gen := kr.KeyGeneration()
	if got := v.RotateKey(t, "poll"); got != 2 {
		t.Fatalf("latest version after rotate = %d, want 2", got)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := keyID(encode(t, c, payloads(1, "after"))[0])
		if got == "vault/transit/poll/v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15s after the rotation new payloads still use %q", got)
		}
		time.Sleep(50 * time.Millisecond) // polling for the poller, with a deadline
	}
	if kr.KeyGeneration() == gen {
		t.Fatal("key generation did not change")
	}
}
