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
// server's (internal/keyflags): --keys-file, --vault-*, and with neither the
// development key file .data/dev-keyring.json.
package exampleenv

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/keyflags"
)

// Keys holds the keyring flags and the codec's decode policy.
type Keys struct {
	opts              keyflags.Options
	subjects          keyflags.SubjectOptions
	requireEncryption bool

	// Subject maps a payload's serialization context to its data subject
	// (codec.Options.Subject); it applies when --subject-store is set.
	Subject func(converter.SerializationContext) string
}

// Register adds the keyring flags (the codec server's) and
// --require-encryption to fs. Register them before the command's own flags.
func (k *Keys) Register(fs *flag.FlagSet) {
	k.opts.DevKeysFile = keyflags.DefaultDevKeysFile
	k.opts.Register(fs)
	k.subjects.Register(fs)
	fs.BoolVar(&k.requireEncryption, "require-encryption", false, "fail on payloads from Temporal that are not encrypted instead of accepting them (a plaintext signal or memo injected by anyone who can write to Temporal)")
}

// CodecOptions returns the codec's options for a client with opts: the
// codec's namespace is the client's (TEMPORAL_NAMESPACE or the profile's,
// "default" when neither names one), so payloads the SDK encodes without a
// serialization context are sealed for the namespace the Web UI and the CLI
// decode them in.
func (k *Keys) CodecOptions(opts client.Options) codec.Options {
	o := codec.Options{Namespace: opts.Namespace, RequireEncryption: k.requireEncryption}
	if k.subjects.Store != "" {
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
the development key file .data/dev-keyring.json (never for real data).

Flags:
`)
		fs.PrintDefaults()
	}
}

// Parse parses args into fs. Keyring flags not on the command line take
// their value from their environment variables (CODEC_SERVER_KEYS_FILE,
// VAULT_ADDR, ...); the command's own flags come from the command line only.
func Parse(fs *flag.FlagSet, args []string) error {
	var probe keyflags.Options
	keyFS := flag.NewFlagSet("", flag.ContinueOnError)
	probe.Register(keyFS)
	keyEnv := make(map[string]bool)
	keyFS.VisitAll(func(f *flag.Flag) { keyEnv[keyflags.EnvName(f.Name)] = true })
	return keyflags.Parse(fs, args, func(name string) (string, bool) {
		if !keyEnv[name] {
			return "", false
		}
		return os.LookupEnv(name)
	})
}

// Dial opens the keyring, builds the envelope codec on it and dials
// Temporal with a data converter that seals every payload. Close the client
// first, then the returned closer.
func (k *Keys) Dial(ctx context.Context, logger *slog.Logger) (client.Client, io.Closer, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("temporal client configuration: %w", err)
	}
	kr, closer, err := k.opts.Open(ctx, logger)
	if err != nil {
		return nil, nil, err
	}
	if kr, err = k.subjects.Wrap(kr, &k.opts); err != nil {
		closer.Close()
		return nil, nil, err
	}
	cdc, err := codec.New(kr, k.CodecOptions(opts))
	if err != nil {
		closer.Close()
		return nil, nil, err
	}
	opts.DataConverter = converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), cdc)
	opts.Logger = tlog.NewStructuredLogger(logger)
	addr := opts.HostPort
	if addr == "" {
		addr = client.DefaultHostPort
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		closer.Close()
		return nil, nil, fmt.Errorf("connect to Temporal at %s: %w", addr, err)
	}
	logger.Info("connected to Temporal", "address", addr, "namespace", cdc.Namespace(), "keyring", k.opts.Source())
	return c, closer, nil
}
