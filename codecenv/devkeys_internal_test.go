package codecenv

import (
	"crypto/tls"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/envelopecodec/envelope/keyconfig"
)

func TestDevKeysOnlyForALocalTemporal(t *testing.T) {
	t.Parallel()
	noEnv := func(string) (string, bool) { return "", false }
	k8s := func(n string) (string, bool) { return "10.0.0.1", n == "KUBERNETES_SERVICE_HOST" }
	tests := []struct {
		name    string
		opts    client.Options
		lookup  func(string) (string, bool)
		environ []string
		want    string // "" allows the development key file
	}{
		{"the default address", client.Options{}, noEnv, nil, ""},
		{"127.0.0.1", client.Options{HostPort: "127.0.0.1:7233"}, noEnv, nil, ""},
		{"a remote Temporal", client.Options{HostPort: "temporal.example.com:7233"}, noEnv, nil, "not on this machine"},
		{"Temporal Cloud with an API key", client.Options{HostPort: "localhost:7233", Credentials: client.NewAPIKeyStaticCredentials("k")}, noEnv, nil, "API key"},
		{"TLS", client.Options{ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{}}}, noEnv, nil, "TLS"},
		{"a misspelled key file variable", client.Options{}, noEnv, []string{"CODEC_SERVER_KEY_FILE=/etc/keys.json"}, "CODEC_SERVER_KEY_FILE"},
		{"a Kubernetes pod", client.Options{}, k8s, nil, "Kubernetes"},
		{"an unrelated server variable", client.Options{}, noEnv, []string{"CODEC_SERVER_LISTEN=127.0.0.1:8081"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := devKeysRefusal(tt.opts, tt.lookup, tt.environ)
			if tt.want == "" && got != "" {
				t.Fatalf("refused: %s", got)
			}
			if tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("refusal %q, want one mentioning %q", got, tt.want)
			}
		})
	}
}

// devKeysRefusal says why Load refuses the development key file for a
// client with opts ("" if it may use it).
func devKeysRefusal(opts client.Options, lookup func(string) (string, bool), environ []string) string {
	cfg := keyconfig.Default()
	cfg.DevKeysFile = keyconfig.DefaultDevKeysFile
	if err := cfg.CheckDevKeys(devKeysUse(opts, lookup, environ)); err != nil {
		return err.Error()
	}
	return ""
}
