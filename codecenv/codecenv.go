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
// Options.Codec.Subject (docs/ERASURE.md). A program with its own flags
// passes its keyconfig.Config as Options.Keys instead.
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
	"fmt"
	"io"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyconfig"
)

// Options configures [Load]. All fields are optional.
type Options struct {
	// LookupEnv reads an environment variable. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Logger receives the keyring's messages (reloads, Vault token
	// renewal). Default: slog.Default().
	Logger *slog.Logger
	// Codec configures the codec; its Namespace is replaced by the
	// Temporal namespace. Default: codec.Options{}. A Subject needs a data
	// subject store (CODEC_SERVER_SUBJECT_STORE).
	Codec codec.Options
	// Keys says where the keys come from, e.g. as a program's flags filled
	// it (keyconfig's Register and Parse). Default: the environment alone
	// (keyconfig.FromEnv with LookupEnv).
	Keys *keyconfig.Config
	// DevKeysFile is a key file created (mode 0600) or reused when no
	// keyring is configured (it sets Keys.DevKeysFile when Keys is nil).
	// Only use this for development: the key sits next to the program,
	// Load logs a warning, and it is refused unless Temporal is on this
	// machine without an API key or TLS, outside Kubernetes (keyconfig's
	// CheckDevKeys). Default: none, and an unconfigured keyring is an
	// error.
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
	// Keyring says what keys were opened, for logs.
	Keyring string

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

	var cfg keyconfig.Config
	if opts.Keys != nil {
		cfg = *opts.Keys
	} else {
		if cfg, err = keyconfig.FromEnv(lookup); err != nil {
			return nil, fmt.Errorf("codecenv: %w", err)
		}
		cfg.DevKeysFile = opts.DevKeysFile
	}
	if cfg.Source() == "" {
		return nil, fmt.Errorf("codecenv: no keyring configured: set %s or VAULT_ADDR (with %s)", keyconfig.EnvName("keys-file"), keyconfig.EnvName("vault-key"))
	}
	if err := cfg.CheckDevKeys(devKeysUse(copts, lookup, envLookup(lookup).Environ())); err != nil {
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	if opts.Codec.Subject != nil && cfg.Subjects.Store == "" {
		return nil, fmt.Errorf("codecenv: Options.Codec.Subject is set but no data subject store is configured: set %s (dir, with %s, or vault; docs/ERASURE.md)",
			keyconfig.EnvName("subject-store"), keyconfig.EnvName("subject-dir"))
	}
	return build(ctx, copts, &cfg, opts.Codec, logger)
}

// devKeysUse describes a client of Temporal with copts for the development
// key policy: Temporal must be on this machine, without an API key or TLS.
func devKeysUse(copts client.Options, lookup func(string) (string, bool), environ []string) keyconfig.DevKeysUse {
	addr := copts.HostPort
	if addr == "" {
		addr = client.DefaultHostPort
	}
	u := keyconfig.DevKeysUse{Address: addr, AddressName: "the Temporal address", LookupEnv: lookup, Environ: environ}
	switch {
	case copts.Credentials != nil:
		u.Auth = "Temporal credentials (an API key) are configured"
	case copts.ConnectionOptions.TLS != nil:
		u.Auth = "TLS to Temporal is configured"
	}
	return u
}

// build opens the keys cfg describes and wires the converters.
func build(ctx context.Context, copts client.Options, cfg *keyconfig.Config, copt codec.Options, logger *slog.Logger) (*Env, error) {
	keys, err := cfg.Open(ctx, logger)
	if err != nil {
		return nil, fmt.Errorf("codecenv: %w", err)
	}
	copt.Namespace = copts.Namespace
	cdc, err := codec.New(keys.Keyring, copt)
	if err != nil {
		keys.Close()
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
		KeyringSource:    keys.Source,
		Keyring:          keys.Description,
		closer:           keys,
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
