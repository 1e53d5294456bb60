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
// development key file .data/dev-keyring.json, which is refused unless
// Temporal is on this machine without an API key or TLS. The codec, the
// data converter and the failure converter (failure messages sealed too)
// come from codecenv.Load, the one call Go users make; the flags only feed
// it.
package exampleenv

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/internal/keyflags"
)

// Keys holds the keyring flags and the codec's decode policy.
type Keys struct {
	opts              keyflags.Options
	subjects          keyflags.SubjectOptions
	fs                *flag.FlagSet
	requireEncryption bool
	refuseLegacy      bool
	refuseV1          bool

	// Subject maps a payload's serialization context to its data subject
	// (codec.Options.Subject); it applies when --subject-store is set.
	Subject func(converter.SerializationContext) string
}

// Register adds the keyring flags (the codec server's) and the decode
// policy flags --require-encryption, --refuse-legacy and --refuse-v1 to fs.
// Register them before the command's own flags.
func (k *Keys) Register(fs *flag.FlagSet) {
	k.opts.DevKeysFile = keyflags.DefaultDevKeysFile
	k.opts.Register(fs)
	k.subjects.Register(fs)
	k.fs = fs
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
	if k.subjects.Store != "" {
		o.Subject = k.Subject
	}
	return o
}

// lookupEnv answers codecenv's environment lookups: a keyring variable
// takes the value of its flag when the flag (or, through Parse, its
// variable) set one; everything else comes from the environment.
func (k *Keys) lookupEnv(name string) (string, bool) {
	var val string
	var found bool
	k.fs.Visit(func(f *flag.Flag) {
		if keyflags.EnvName(f.Name) == name {
			val, found = f.Value.String(), true
		}
	})
	if found {
		return val, true
	}
	return os.LookupEnv(name)
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

// devKeysRefusal says why the development key file must not be used with
// these client options ("" if it may): only against a Temporal on this
// machine without an API key or TLS, outside Kubernetes, and with no
// misspelled keyring variable in the environment.
func devKeysRefusal(opts client.Options, lookup func(string) (string, bool), environ []string) string {
	host := opts.HostPort
	if host == "" {
		host = client.DefaultHostPort
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	ip := net.ParseIP(h)
	switch {
	case h != "localhost" && (ip == nil || !ip.IsLoopback()):
		return fmt.Sprintf("the Temporal address %s is not on this machine", host)
	case opts.Credentials != nil:
		return "Temporal credentials (an API key) are configured"
	case opts.ConnectionOptions.TLS != nil:
		return "TLS to Temporal is configured"
	}
	// A misspelled keyring variable (CODEC_SERVER_KEY_FILE, CODEC_SERVER_VAULTKEY).
	var probe keyflags.Options
	keyFS := flag.NewFlagSet("", flag.ContinueOnError)
	probe.Register(keyFS)
	for _, name := range keyflags.UnknownEnv(keyFS, environ) {
		if strings.HasPrefix(name, keyflags.EnvPrefix+"KEY") || strings.HasPrefix(name, keyflags.EnvPrefix+"VAULT") {
			return "the environment sets " + name + ", which names no keyring flag (misspelled?)"
		}
	}
	return keyflags.InKubernetes(lookup)
}

// Dial opens the keyring, builds the envelope codec on it and dials
// Temporal with the data and failure converters of codecenv.Load: every
// payload, failure message and stack trace is sealed. Close the client
// first, then the returned closer.
func (k *Keys) Dial(ctx context.Context, logger *slog.Logger) (client.Client, io.Closer, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("temporal client configuration: %w", err)
	}
	if k.opts.Source() == "dev-file" {
		if why := devKeysRefusal(opts, os.LookupEnv, os.Environ()); why != "" {
			return nil, nil, keyflags.NoKeyringError(why)
		}
	}
	env, err := codecenv.Load(ctx, codecenv.Options{LookupEnv: k.lookupEnv, Logger: logger, DevKeysFile: k.opts.DevKeysFile, Codec: k.CodecOptions(opts)})
	if err != nil {
		return nil, nil, err
	}
	opts = env.ClientOptions
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
	logger.Info("connected to Temporal", "address", addr, "namespace", env.Namespace, "keyring", env.KeyringSource)
	return c, env, nil
}
