// Package exampleenv connects the example worker and starter to Temporal
// the way Temporal users configure clients, with the envelope codec on the
// client's data converter.
//
// The connection comes from go.temporal.io/sdk/contrib/envconfig: the
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*
// variables and the profiles of the Temporal config file
// (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), so the same binaries work
// against a local dev server, a self-hosted cluster with mTLS or Temporal
// Cloud. The keyring comes from the same flags and variables as the codec
// server's (package keyconfig): --keys-file, --vault-*, --subject-*, and
// with none the development key file .data/dev-keyring.json, which
// codecenv refuses unless Temporal is on this machine without an API key
// or TLS. The codec, the data converter and the failure converter (failure
// messages sealed too) come from codecenv.Load, the one call Go users make;
// the flags fill the keyconfig.Config it takes.
package exampleenv

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/keyconfig"
)

// Keys holds the keyring flags and the codec's decode policy.
type Keys struct {
	cfg               keyconfig.Config
	requireEncryption bool
	refuseLegacy      bool
	refuseV1          bool

	// Subject maps a payload's serialization context to its data subject
	// (codec.Options.Subject); it applies when a data subject store is
	// configured (--subject-store or CODEC_SERVER_SUBJECT_STORE).
	Subject func(converter.SerializationContext) string
}

// Register adds the keyring flags (the codec server's) and the decode
// policy flags --require-encryption, --refuse-legacy and --refuse-v1 to fs.
// Register them before the command's own flags.
func (k *Keys) Register(fs *flag.FlagSet) {
	k.cfg = keyconfig.Default()
	k.cfg.DevKeysFile = keyconfig.DefaultDevKeysFile
	k.cfg.Register(fs)
	fs.BoolVar(&k.requireEncryption, "require-encryption", false, "fail on payloads from Temporal that are not encrypted instead of accepting them (a plaintext signal or memo injected by anyone who can write to Temporal)")
	fs.BoolVar(&k.refuseLegacy, "refuse-legacy", false, "refuse payloads in the Temporal samples' static-key format even when the key file holds their key (anyone who knows that key can seal such payloads; set it with --require-encryption once migration is done)")
	fs.BoolVar(&k.refuseV1, "refuse-v1", false, "refuse envelope/v1 payloads, which are not bound to a namespace (set after migrating histories to v2)")
}

// CodecOptions returns the codec's options for a client with opts: the
// codec's namespace is the client's (TEMPORAL_NAMESPACE or the profile's,
// "default" when neither names one), so payloads the SDK encodes without a
// serialization context are sealed for the namespace the Web UI and the CLI
// decode them in.
func (k *Keys) CodecOptions(opts client.Options) codec.Options {
	o := codec.Options{Namespace: opts.Namespace, RequireEncryption: k.requireEncryption, RefuseLegacy: k.refuseLegacy, RefuseV1: k.refuseV1}
	if k.cfg.Subjects.Store != "" {
		o.Subject = k.Subject
	}
	return o
}

// SetUsage makes fs print summary, the Temporal connection variables and
// the flags on --help.
func SetUsage(fs *flag.FlagSet, summary string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "%s\n\nUsage: %s [flags]\n\n", summary, fs.Name())
		fmt.Fprint(w, `Temporal connection (go.temporal.io/sdk/contrib/envconfig):
  TEMPORAL_ADDRESS        host:port of the frontend (default localhost:7233)
  TEMPORAL_NAMESPACE      namespace (default "default")
  TEMPORAL_API_KEY        API key (Temporal Cloud); turns TLS on
  TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME
                          mTLS settings
  TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE
                          a profile of the Temporal config file instead

Keyring: --keys-file or --vault-* (the codec server's flags); with neither,
the development key file .data/dev-keyring.json (never for real data), but
only against a Temporal on this machine without an API key or TLS, and not
in a Kubernetes pod.

Flags:
`)
		fs.PrintDefaults()
	}
}

// Parse parses args into fs. Keyring and data subject flags not on the
// command line take their value from their environment variables
// (CODEC_SERVER_KEYS_FILE, VAULT_ADDR, CODEC_SERVER_SUBJECT_STORE, ...);
// the command's own flags come from the command line only.
func Parse(fs *flag.FlagSet, args []string) error {
	probe := keyconfig.Default()
	keyFS := flag.NewFlagSet("", flag.ContinueOnError)
	probe.Register(keyFS)
	keyEnv := keyconfig.FlagEnvNames(keyFS)
	return keyconfig.Parse(fs, args, func(name string) (string, bool) {
		if !keyEnv[name] {
			return "", false
		}
		return os.LookupEnv(name)
	})
}

// Dial opens the keyring, builds the envelope codec on it and dials
// Temporal with the data and failure converters of codecenv.Load: every
// payload, failure message and stack trace is sealed. Close the client
// first, then the returned closer.
func (k *Keys) Dial(ctx context.Context, logger *slog.Logger) (client.Client, io.Closer, error) {
	env, err := codecenv.Load(ctx, codecenv.Options{Keys: &k.cfg, Logger: logger, Codec: k.CodecOptions(client.Options{})})
	if err != nil {
		return nil, nil, err
	}
	opts := env.ClientOptions
	opts.Logger = tlog.NewStructuredLogger(logger)
	addr := opts.HostPort
	if addr == "" {
		addr = client.DefaultHostPort
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		env.Close()
		return nil, nil, fmt.Errorf("connect to Temporal at %s: %w", addr, err)
	}
	logger.Info("connected to Temporal", "address", addr, "namespace", env.Namespace, "keyring", env.KeyringSource, "keys", env.Keyring)
	return c, env, nil
}
