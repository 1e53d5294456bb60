package keyring_test

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// TestLegacyKeyWithTheSamplesDefaultID: the samples' default key ID is
// "", so a legacy key may have it; any other key may not.
func TestLegacyKeyWithTheSamplesDefaultID(t *testing.T) {
	t.Parallel()
	kr, err := keyring.OpenFile(keyringtest.SamplesKeyFile(t, ""), keyring.FileOptions{})
	if err != nil {
		t.Fatalf("a legacy key with the ID \"\": %v", err)
	}
	k, err := kr.LegacyKey(context.Background(), "")
	if err != nil || string(k.UnsafeBytes()) != string(keyringtest.SamplesKey) {
		t.Fatalf("LegacyKey(\"\") = %v, %v", k, err)
	}

	key := base64.StdEncoding.EncodeToString(keyringtest.SamplesKey)
	path := filepath.Join(t.TempDir(), "keys.json")
	content := `{"version":1,"active":"a","keys":[{"id":"a","created":"2026-01-01T00:00:00Z","key":"` + key + `"},{"id":"","created":"2026-01-01T00:00:00Z","key":"` + key + `"}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.OpenFile(path, keyring.FileOptions{}); err == nil || !strings.Contains(err.Error(), "empty id") {
		t.Errorf("an envelope key with the ID \"\": err = %v, want empty id", err)
	}
}
