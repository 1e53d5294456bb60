// Package codecenv configures the envelope codec for a Temporal client or
// worker in one call, from the same environment variables as the codec
// server and the same Temporal settings as the SDK's envconfig package, so
// the client, the worker, the codec and the codec server cannot disagree.
//
//	env, err := codecenv.Load(ctx, codecenv.Options{})
//	if err != nil { ... }
//	defer env.Close()
//	c, err := client.DialContext(ctx, env.ClientOptions)
//
// # Keyring
//
// The keyring comes from the codec server's variables: CODEC_SERVER_KEYS_FILE
// (a key file, reloaded every CODEC_SERVER_KEYS_RELOAD, default 10s), or
// VAULT_ADDR with CODEC_SERVER_VAULT_KEY, VAULT_TOKEN or the AppRole and
// Kubernetes variables, and the other CODEC_SERVER_VAULT_* settings; every
// one is listed with the server's flags in the README. Exactly one keyring
// must be configured. CODEC_SERVER_SUBJECT_STORE (dir, with
// CODEC_SERVER_SUBJECT_DIR, or vault) adds data subject keys for
// Options.Codec.Subject (docs/ERASURE.md).
//
// # Temporal connection and namespace
//
// ClientOptions come from go.temporal.io/sdk/contrib/envconfig
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*,
// or a profile of the Temporal config file). The codec's namespace is the
// ClientOptions' namespace ("default" when none is set): the same setting,
// read once.
//
// # Failures
//
// The data converter seals payloads, but a failure's message and stack
// trace are not payloads: by default Temporal stores them in plaintext.
// FailureConverter is the SDK's default failure converter with
// EncodeCommonAttributes, so messages and stack traces travel sealed as a
// payload too; ClientOptions carries it. The temporal CLI and the Web UI
// show them decoded through the codec server.
//
// This package reads the environment on purpose (through
// Options.LookupEnv); the codec, keyring and codecserver packages never do.
package codecenv

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
	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/keyflags"
)

// Options configures [Load]. All fields are optional.
type Options struct {
	// LookupEnv reads an environment variable. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Logger receives the keyring's messages (reloads, Vault token
	// renewal). Default: slog.Default().
	Logger *slog.Logger
	// Codec configures the codec; its Namespace is replaced by the
	// Temporal namespace. Default: codec.Options{}.
	Codec codec.Options
	// DevKeysFile is a key file created (mode 0600) or reused when no
	// keyring is configured. Only use this for development: the key sits
	// next to the program, and Load logs a warning. Default: none, and an
	// unconfigured keyring is an error.
	DevKeysFile string
	// Temporal is passed to envconfig.LoadClientOptions, e.g. to name a
	// config file or profile. Its EnvLookup defaults to LookupEnv.
	Temporal envconfig.LoadClientOptionsRequest
}

// Env is a ready configuration: a codec on the configured keyring, the
// data and failure converters built on it, and Temporal client options
// that use both.
type Env struct {
	// ClientOptions are envconfig's options with DataConverter and
	// FailureConverter set; pass them to client.Dial. Workers created from
	// that client use the same converters.
	ClientOptions client.Options
	// Namespace is the Temporal namespace of ClientOptions and the codec.
	Namespace string
	// Codec is the envelope codec, e.g. for a codecserver.Config.
	Codec *codec.Codec
	// DataConverter seals every payload with Codec.
	DataConverter converter.DataConverter
	// FailureConverter encodes failure messages and stack traces with
	// DataConverter (EncodeCommonAttributes).
	FailureConverter converter.FailureConverter
	// KeyringSource is "file", "vault" or "dev-file", for logs.
	KeyringSource string

	closer io.Closer
}

// Load reads the environment and returns a ready Env. Close it when done
// (after the client): it stops the key file's reloading and Vault token
// renewal.
func Load(ctx context.Context, opts Options) (*Env, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	treq := opts.Temporal
	if treq.EnvLookup == nil {
		treq.EnvLookup = envLookup(lookup)
	}
	copts, err := envconfig.LoadClientOptions(treq)
	if err != nil {
		return nil, fmt.Errorf("codecenv: temporal client configuration: %w", err)
	}
	if copts.Namespace == "" {
		copts.Namespace = codec.DefaultNamespace
	}

	var ko keyflags.Options
	var so keyflags.SubjectOptions
	fs := flag.NewFlagSet("codecenv", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ko.Register(fs)
	so.Register(fs)
	if err := keyflags.ApplyEnv(fs, lookup); err != nil {
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	ko.DevKeysFile = opts.DevKeysFile
	if ko.Source() == "" {
		return nil, fmt.Errorf("codecenv: no keyring configured: set %s or VAULT_ADDR (with %s)", keyflags.EnvName("keys-file"), keyflags.EnvName("vault-key"))
	}
	return build(ctx, copts, ko, so, opts.Codec, logger)
}

// build opens the keyring described by ko and wires the converters.
func build(ctx context.Context, copts client.Options, ko keyflags.Options, so keyflags.SubjectOptions, copt codec.Options, logger *slog.Logger) (*Env, error) {
	kr, closer, err := ko.Open(ctx, logger)
	if err != nil {
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	// Data subject keys (CODEC_SERVER_SUBJECT_STORE, docs/ERASURE.md).
	if kr, err = so.Wrap(ctx, kr, &ko); err != nil {
		closer.Close()
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	copt.Namespace = copts.Namespace
	cdc, err := codec.New(kr, copt)
	if err != nil {
		closer.Close()
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), cdc)
	fc := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
	copts.DataConverter = dc
	copts.FailureConverter = fc
	return &Env{
		ClientOptions:    copts,
		Namespace:        copts.Namespace,
		Codec:            cdc,
		DataConverter:    dc,
		FailureConverter: fc,
		KeyringSource:    ko.Source(),
		closer:           closer,
	}, nil
}

// Close stops the keyring's background work.
func (e *Env) Close() error {
	if e == nil || e.closer == nil {
		return nil
	}
	return e.closer.Close()
}

// envLookup adapts a lookup function to envconfig.EnvLookup.
type envLookup func(string) (string, bool)

func (f envLookup) LookupEnv(k string) (string, bool) { return f(k) }

// Environ lists the variables envconfig reads (TEMPORAL_GRPC_META_*
// headers come from here). With a custom lookup only os.Environ's names are
// known; values still come from the lookup.
func (f envLookup) Environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				if v, ok := f(kv[:i]); ok {
					out = append(out, kv[:i]+"="+v)
				}
				break
			}
		}
	}
	return out
}
