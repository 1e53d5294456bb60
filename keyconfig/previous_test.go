package keyconfig_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyconfig"
)

func TestVaultPreviousKeysFlag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"repeated flag", []string{"--vault-previous-keys", "old-a", "--vault-previous-keys", "old-b"}, nil},
		{"comma-separated environment twin", nil, map[string]string{"CODEC_SERVER_VAULT_PREVIOUS_KEYS": "old-a, old-b"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o keyconfig.Config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Register(fs)
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if err := keyconfig.Parse(fs, tt.args, lookup); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(o.Vault.PreviousKeys, ","); got != "old-a,old-b" {
				t.Errorf("PreviousKeys = %q, want old-a,old-b", got)
			}
		})
	}
}
