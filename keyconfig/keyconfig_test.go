package keyconfig_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyconfig"
)

func TestEnvName(t *testing.T) {
	t.Parallel()
	for flagName, want := range map[string]string{
		"keys-file":               "CODEC_SERVER_KEYS_FILE",
		"cors-origin":             "CODEC_SERVER_CORS_ORIGIN",
		"vault-addr":              "VAULT_ADDR",
		"vault-token":             "VAULT_TOKEN",
		"vault-namespace":         "VAULT_NAMESPACE",
		"vault-cacert":            "VAULT_CACERT",
		"vault-key":               "CODEC_SERVER_VAULT_KEY",
		"vault-approle-secret-id": "CODEC_SERVER_VAULT_APPROLE_SECRET_ID",
	} {
		if got := keyconfig.EnvName(flagName); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, o *keyconfig.Config, origins []string)
		wantErr string
	}{
		{
			name: "environment fills unset flags",
			env:  map[string]string{"CODEC_SERVER_KEYS_FILE": "/k.json", "VAULT_TOKEN": "s.tok", "CODEC_SERVER_KEYS_RELOAD": "3s"},
			check: func(t *testing.T, o *keyconfig.Config, _ []string) {
				if o.File.Path != "/k.json" || o.Vault.Token != "s.tok" || o.File.Reload != 3*time.Second {
					t.Errorf("got %q %q %v", o.File.Path, o.Vault.Token, o.File.Reload)
				}
			},
		},
		{
			name: "a flag on the command line wins over the environment",
			args: []string{"--keys-file", "/flag.json"},
			env:  map[string]string{"CODEC_SERVER_KEYS_FILE": "/env.json"},
			check: func(t *testing.T, o *keyconfig.Config, _ []string) {
				if o.File.Path != "/flag.json" {
					t.Errorf("KeysFile = %q", o.File.Path)
				}
			},
		},
		{
			name: "a repeatable flag splits its environment value on commas",
			env:  map[string]string{"CODEC_SERVER_ORIGIN": "http://a, http://b,"},
			check: func(t *testing.T, _ *keyconfig.Config, origins []string) {
				if strings.Join(origins, " ") != "http://a http://b" {
					t.Errorf("origins = %q", origins)
				}
			},
		},
		{
			name:    "a bad environment value names the variable but not the value",
			env:     map[string]string{"CODEC_SERVER_KEYS_RELOAD": "secretish"},
			wantErr: "CODEC_SERVER_KEYS_RELOAD",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var o keyconfig.Config
			var origins keyconfig.StringList
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.Var(&origins, "origin", "allowed origin")
			o.Register(fs)
			err := keyconfig.Parse(fs, tt.args, lookup(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secretish") {
					t.Errorf("error %q shows the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &o, origins)
		})
	}
}

func TestUsageNamesEnv(t *testing.T) {
	t.Parallel()
	var o keyconfig.Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.Register(fs)
	for _, name := range []string{"keys-file", "vault-addr", "vault-key"} {
		f := fs.Lookup(name)
		if f == nil || !strings.Contains(f.Usage, keyconfig.EnvName(name)) {
			t.Errorf("usage of --%s does not name its environment variable: %+v", name, f)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		o       keyconfig.Config
		wantErr string
	}{
		{"nothing configured", keyconfig.Config{}, "no keyring configured"},
		{"both file and Vault", keyconfig.Config{File: keyconfig.FileSource{Path: "k"}, Vault: vaultCfg("http://v", "k")}, "choose one"},
		{"Vault without a key", keyconfig.Config{Vault: vaultCfg("http://v", "")}, "--vault-key"},
		{"a key file", keyconfig.Config{File: keyconfig.FileSource{Path: "k"}}, ""},
		{"a dev key file", keyconfig.Config{DevKeysFile: "k"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenDevKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".data", "dev-keyring.json")
	o := keyconfig.Config{DevKeysFile: path, File: keyconfig.FileSource{Reload: 10 * time.Millisecond}}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	keys, err := o.Open(context.Background(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	kr := keys.Keyring
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode = %v, want 0600", fi.Mode().Perm())
	}
	dk, err := kr.NewDataKey(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	// Reopening reuses the file: the first keyring's data key still unwraps.
	keys2, err := o.Open(context.Background(), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer keys2.Close()
	kr2 := keys2.Keyring
	if _, err := kr2.UnwrapDataKeys(context.Background(), "default", nil); err != nil {
		t.Fatal(err)
	}
	got, err := kr2.UnwrapDataKeys(context.Background(), "default", []keyringWrapped{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
	if err != nil || len(got) != 1 {
		t.Fatalf("reused dev key file cannot unwrap: %v", err)
	}
}

func TestOpenMissingKeyFile(t *testing.T) {
	t.Parallel()
	o := keyconfig.Config{File: keyconfig.FileSource{Path: filepath.Join(t.TempDir(), "missing.json")}}
	if _, err := o.Open(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Open = %v, want an error naming the file", err)
	}
}
