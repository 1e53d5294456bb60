package keyconfig_test

import (
	"flag"
	"io"
	"testing"

	"github.com/envelopecodec/envelope/keyconfig"
)

// TestVaultMaxRetriesZeroMeansNone: --vault-max-retries 0 turns retries
// off (vault.Config says -1 for that); no flag keeps Vault's default of 2.
func TestVaultMaxRetriesZeroMeansNone(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		args    []string
		want    int // vault.Config.MaxRetries
		wantErr bool
	}{
		{"no flag keeps the default", nil, 0, false},
		{"0 means no retries", []string{"--vault-max-retries", "0"}, -1, false},
		{"3 means three", []string{"--vault-max-retries", "3"}, 3, false},
		{"a negative number is refused", []string{"--vault-max-retries", "-1"}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o keyconfig.Config
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Register(fs)
			err := fs.Parse(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && o.Vault.MaxRetries != tt.want {
				t.Errorf("MaxRetries = %d, want %d", o.Vault.MaxRetries, tt.want)
			}
			if got := fs.Lookup("vault-max-retries").DefValue; got != "2" {
				t.Errorf("--help default %q, want 2", got)
			}
		})
	}
}
