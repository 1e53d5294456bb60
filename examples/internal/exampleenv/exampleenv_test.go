package exampleenv_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/examples/internal/exampleenv"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

func TestParseTakesOnlyKeyringFlagsFromTheEnvironment(t *testing.T) {
	t.Setenv("CODEC_SERVER_KEYS_FILE", "/env/keys.json")
	t.Setenv("CODEC_SERVER_TASK_QUEUE", "from-env")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	tq := fs.String("task-queue", "default-queue", "")
	if err := exampleenv.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("keys-file").Value.String(); got != "/env/keys.json" {
		t.Errorf("--keys-file = %q, want the environment's /env/keys.json", got)
	}
	if *tq != "default-queue" {
		t.Errorf("--task-queue = %q, want its default: only keyring flags read the environment", *tq)
	}
}

func TestParsePrefersTheCommandLine(t *testing.T) {
	t.Setenv("CODEC_SERVER_KEYS_FILE", "/env/keys.json")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	if err := exampleenv.Parse(fs, []string{"--keys-file", "/flag/keys.json"}); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("keys-file").Value.String(); got != "/flag/keys.json" {
		t.Errorf("--keys-file = %q, want the flag's /flag/keys.json", got)
	}
}

// TestCodecNamespaceFollowsTheClient: the codec seals for the namespace
// the client connects to, from TEMPORAL_NAMESPACE or the config file's
// profile, as the SDK's envconfig reads them.
func TestCodecNamespaceFollowsTheClient(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(profile, []byte("[profile.default]\naddress = \"127.0.0.1:7233\"\nnamespace = \"from-profile\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"TEMPORAL_NAMESPACE", map[string]string{"TEMPORAL_NAMESPACE": "payments"}, "payments"},
		{"the profile's namespace", map[string]string{"TEMPORAL_CONFIG_FILE": profile}, "from-profile"},
		{"neither: the codec's default", nil, codec.DefaultNamespace},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"TEMPORAL_NAMESPACE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE"} {
				t.Setenv(k, tt.env[k])
				if _, ok := tt.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			t.Setenv("HOME", t.TempDir()) // no user config file
			opts, err := envconfig.LoadDefaultClientOptions()
			if err != nil {
				t.Fatal(err)
			}
			var keys exampleenv.Keys
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			keys.Register(fs)
			c, err := codec.New(keyringtest.New(), keys.CodecOptions(opts))
			if err != nil {
				t.Fatal(err)
			}
			if c.Namespace() != tt.want {
				t.Errorf("codec namespace %q, want %q", c.Namespace(), tt.want)
			}
		})
	}
}

func TestRequireEncryptionFlag(t *testing.T) {
	var keys exampleenv.Keys
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	keys.Register(fs)
	if keys.CodecOptions(client.Options{}).RequireEncryption {
		t.Fatal("RequireEncryption on by default")
	}
	if err := exampleenv.Parse(fs, []string{"--require-encryption"}); err != nil {
		t.Fatal(err)
	}
	o := keys.CodecOptions(client.Options{Namespace: "payments"})
	if !o.RequireEncryption || o.Namespace != "payments" {
		t.Errorf("options %+v, want RequireEncryption in payments", o)
	}
}
