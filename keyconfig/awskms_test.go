package keyconfig_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring"
	commonpb "go.temporal.io/api/common/v1"
)

// TestAWSKMSFromTheEnvironment opens the AWS KMS keyring the way a worker
// or codec server deployed next to KMS does: CODEC_SERVER_AWS_KMS_KEY and
// CODEC_SERVER_AWS_KMS_PREVIOUS_KEYS, and the AWS SDK's own variables
// (AWS_ENDPOINT_URL_KMS, AWS_REGION, credentials) pointing at local-kms.
// Not parallel: the AWS SDK reads the process environment.
func TestAWSKMSFromTheEnvironment(t *testing.T) {
	k := testenv.StartKMS(t)
	oldARN := k.CreateKey(t, "alias/config-old")
	k.CreateKey(t, "alias/config")
	for _, kv := range k.Env() {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	open := func(t *testing.T, env map[string]string) *keyconfig.Keys {
		t.Helper()
		cfg, err := keyconfig.FromEnv(lookup(env))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Source(); got != "aws-kms" {
			t.Fatalf("Source() = %q, want aws-kms", got)
		}
		keys, err := cfg.Open(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { keys.Close() })
		return keys
	}
	ps := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"secret"`)}}
	old := open(t, map[string]string{"CODEC_SERVER_AWS_KMS_KEY": "alias/config-old"})
	sealed, err := mustCodec(t, old.Keyring).EncodeContext(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(sealed[0].Metadata["encryption-key-id"]); got != "aws-kms/v1/"+oldARN {
		t.Fatalf("key id %q, want aws-kms/v1/%s", got, oldARN)
	}

	keys := open(t, map[string]string{"CODEC_SERVER_AWS_KMS_KEY": "alias/config", "CODEC_SERVER_AWS_KMS_PREVIOUS_KEYS": "alias/config-old"})
	if !strings.Contains(keys.Description, "AWS KMS key alias/config in "+testenv.KMSRegion) {
		t.Errorf("Description = %q", keys.Description)
	}
	if _, err := mustCodec(t, keys.Keyring).DecodeContext(ctx, sealed); err != nil {
		t.Fatalf("decode with the old key as a previous key: %v", err)
	}
	without := open(t, map[string]string{"CODEC_SERVER_AWS_KMS_KEY": "alias/config"})
	if _, err := mustCodec(t, without.Keyring).DecodeContext(ctx, sealed); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("decode without the previous key: %v, want keyring.ErrUnknownKey", err)
	}

	// Two sources are refused, and so is a key KMS does not have.
	cfg, _ := keyconfig.FromEnv(lookup(map[string]string{"CODEC_SERVER_AWS_KMS_KEY": "alias/config", "CODEC_SERVER_KEYS_FILE": "/k.json"}))
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--aws-kms-key") {
		t.Errorf("Validate with a key file and a KMS key: %v", err)
	}
	cfg, _ = keyconfig.FromEnv(lookup(map[string]string{"CODEC_SERVER_AWS_KMS_KEY": "alias/missing"}))
	if _, err := cfg.Open(ctx, nil); !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "alias/missing") {
		t.Errorf("Open with a missing key: %v, want keyring.ErrUnknownKey naming the key", err)
	}
}

// TestMisspelledAWSKMSVariableRefusesDevKeys: a misspelled
// CODEC_SERVER_AWS_KMS_KEY must not silently fall back to the development
// key file.
func TestMisspelledAWSKMSVariableRefusesDevKeys(t *testing.T) {
	t.Parallel()
	cfg := keyconfig.Default()
	cfg.DevKeysFile = t.TempDir() + "/dev.json"
	err := cfg.CheckDevKeys(keyconfig.DevKeysUse{Address: "127.0.0.1:8081", AddressName: "--listen", Environ: []string{"CODEC_SERVER_AWS_KMS_KYE=alias/temporal"}})
	if err == nil || !strings.Contains(err.Error(), "CODEC_SERVER_AWS_KMS_KYE") {
		t.Fatalf("CheckDevKeys with CODEC_SERVER_AWS_KMS_KYE set: %v, want a refusal naming it", err)
	}
}

func mustCodec(t *testing.T, kr keyring.Keyring) *codec.Codec {
	t.Helper()
	c, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
