package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/internal/loopback"
	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring"
	"golang.org/x/net/netutil"
)

// DevUIOrigins are the origins of the Temporal dev server's Web UI, allowed
// by default when the server runs without authentication on loopback.
var DevUIOrigins = []string{"http://localhost:8233", "http://127.0.0.1:8233"}

// Config is everything the flags set.
type Config struct {
	Listen           string
	DefaultNamespace string
	InsecureNoAuth   bool

	// Keys says where the keys come from (--keys-file, --vault-*,
	// --subject-*), and DevKeysFile the development key file.
	Keys keyconfig.Config
	// Zlib chains the zlib codec after the envelope codec (--zlib).
	Zlib bool

	// NamespaceAliases are --namespace-alias values, NEW=OLD: namespace
	// NEW may open payloads sealed for OLD.
	NamespaceAliases  keyconfig.StringList
	RefuseV1          bool
	RefuseLegacy      bool
	RequireEncryption bool

	CORSOrigins keyconfig.StringList
	CORSMaxAge  time.Duration

	JWKSURL          string
	OIDCIssuer       string
	JWKSFile         string
	JWTIssuer        string
	JWTAudience      string
	JWTAlgorithms    string
	PermissionsClaim string
	PermissionsRegex string
	JWTSkew          time.Duration
	JWTMaxLifetime   time.Duration

	TLSCert           string
	TLSKey            string
	TLSClientCA       string
	TLSReload         time.Duration
	ClientPermissions keyconfig.StringList

	MaxBodyBytes      int64
	MaxPayloads       int
	MaxMetadata       int
	MaxInFlightBytes  int64
	MaxDecompressed   int64
	MaxConnections    int
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration
	ShutdownDelay     time.Duration

	LogFormat string
	LogLevel  string
	Metrics   bool
	Audit     bool
	AuditLog  string
	AuditSync time.Duration
}

// DefaultConfig returns the configuration of `codec-server` with no flags.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:8081",
		DefaultNamespace:  codec.DefaultNamespace,
		Keys:              defaultKeys(),
		CORSMaxAge:        codecserver.DefaultCORSMaxAge,
		JWTAlgorithms:     strings.Join(codecserver.DefaultJWTAlgorithms, ","),
		PermissionsClaim:  codecserver.DefaultPermissionsClaim,
		JWTSkew:           codecserver.DefaultJWTSkew,
		TLSReload:         time.Minute,
		MaxBodyBytes:      codecserver.DefaultMaxBodyBytes,
		MaxPayloads:       codecserver.DefaultMaxPayloads,
		MaxMetadata:       codecserver.DefaultMaxMetadataEntries,
		MaxInFlightBytes:  codecserver.DefaultMaxInFlightBodyBytes,
		MaxDecompressed:   codecserver.DefaultMaxDecompressedBytes,
		MaxConnections:    codecserver.DefaultMaxConnections,
		AuditSync:         codecserver.DefaultAuditFlushInterval,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ShutdownTimeout:   20 * time.Second,
		ShutdownDelay:     DefaultShutdownDelay,
		LogFormat:         "text",
		LogLevel:          "info",
		Metrics:           true,
		Audit:             true,
		Zlib:              true,
	}
}

// Main is the server program: ParseFlags, Run, then Close.
type Main struct {
	Config Config

	// Stdout and Stderr default to os.Stdout and os.Stderr; LookupEnv to
	// os.LookupEnv.
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
	// Environ lists the environment (os.Environ by default), to find
	// misspelled CODEC_SERVER_* variables.
	Environ func() []string

	logger    *slog.Logger
	ln        net.Listener
	srv       *http.Server
	handler   *codecserver.Server
	done      chan error
	cancel    context.CancelFunc
	closers   []io.Closer
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewMain returns a Main with DefaultConfig.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv, Environ: os.Environ, done: make(chan error, 1)}
}

// FlagSet returns the server's flags bound to c.
func (c *Config) FlagSet(out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on; without auth it must be a loopback address")
	fs.StringVar(&c.DefaultNamespace, "default-namespace", c.DefaultNamespace, "namespace of requests that name none (the temporal CLI sends an empty X-Namespace)")
	fs.BoolVar(&c.Zlib, "zlib", c.Zlib, "/decode decompresses binary/zlib payloads that are not sealed (the SDK's zlib codec; sealed ones are always decompressed); /encode never compresses (--zlib=false turns it off)")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth, "serve without authentication on a non-loopback address: anyone who reaches it can decrypt. Only use this behind a proxy that authenticates")

	fs.Var(&c.NamespaceAliases, "namespace-alias", "NEW=OLD: namespace NEW may decode payloads sealed for namespace OLD, for a renamed or migrated namespace (repeatable; one way; never implicit)")
	fs.BoolVar(&c.RefuseV1, "refuse-v1", c.RefuseV1, "refuse envelope/v1 payloads, which are not bound to a namespace (set after migrating histories to v2)")
	fs.BoolVar(&c.RefuseLegacy, "refuse-legacy", c.RefuseLegacy, "refuse payloads in the Temporal samples' static-key format even when the key file holds their key (set once migration is done)")
	fs.BoolVar(&c.RequireEncryption, "require-encryption", c.RequireEncryption, "answer 422 for payloads that are not encrypted instead of returning them unchanged")

	fs.Var(&c.CORSOrigins, "cors-origin", "origin the Web UI is served from, e.g. https://temporal.example.com (repeatable; \"*\" is refused). Default without auth: the dev UI, "+strings.Join(DevUIOrigins, " and "))
	fs.DurationVar(&c.CORSMaxAge, "cors-max-age", c.CORSMaxAge, "how long browsers cache a CORS preflight")

	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "URL of the JWKS that signs bearer tokens (turns JWT auth on)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", c.OIDCIssuer, "OpenID Connect issuer whose discovery document names the JWKS (turns JWT auth on)")
	fs.StringVar(&c.JWKSFile, "jwks-file", c.JWKSFile, "local JWKS file, re-read when it changes (turns JWT auth on)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required \"iss\" of tokens (default with --oidc-issuer: the issuer)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "required \"aud\" of tokens")
	fs.StringVar(&c.JWTAlgorithms, "jwt-algorithms", c.JWTAlgorithms, "comma-separated allow-list of asymmetric signature algorithms")
	fs.StringVar(&c.PermissionsClaim, "jwt-permissions-claim", c.PermissionsClaim, "claim holding Temporal permissions <namespace>:<read|write|worker|admin>")
	fs.DurationVar(&c.JWTSkew, "jwt-skew", c.JWTSkew, "clock skew allowed for exp and nbf")
	fs.StringVar(&c.PermissionsRegex, "jwt-permissions-regex", c.PermissionsRegex, "regular expression with named groups (?P<namespace>...) and (?P<role>...) that parses each permission entry instead of <namespace>:<role> (Temporal's permissionsRegex)")
	fs.DurationVar(&c.JWTMaxLifetime, "jwt-max-lifetime", c.JWTMaxLifetime, "refuse tokens whose exp is more than this after their iat (0: no limit)")

	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) to serve HTTPS; reloaded when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "PEM CA bundle; /encode and /decode require a client certificate it signed (mTLS); /healthz, /readyz and /metrics do not")
	fs.DurationVar(&c.TLSReload, "tls-reload", c.TLSReload, "how often to check the TLS files for changes")
	fs.Var(&c.ClientPermissions, "client-permission", "grant a client certificate a permission, <identity>=<namespace>:<role>; identity is the subject CN (bare or cn:NAME), a SAN uri:URI, dns:NAME or email:ADDR, or * for every verified certificate (repeatable; turns mTLS identities on)")

	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body; larger gets 413")
	fs.IntVar(&c.MaxPayloads, "max-payloads", c.MaxPayloads, "most payloads in one request; more gets 413")
	fs.IntVar(&c.MaxMetadata, "max-metadata-entries", c.MaxMetadata, "most metadata entries of all payloads in one request; more gets 413")
	fs.Int64Var(&c.MaxInFlightBytes, "max-inflight-body-bytes", c.MaxInFlightBytes, "bytes all requests may hold together (bodies, parsed objects, what /decode decompresses, answers), one identity at most 3/4 of it; past it requests get 503 with Retry-After")
	fs.Int64Var(&c.MaxDecompressed, "max-decompressed-bytes", c.MaxDecompressed, "most bytes each codec decompresses for one /decode request (the objects they unmarshal into included); more gets 422")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most connections open at once; more wait to be accepted")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", c.ReadHeaderTimeout, "time to read request headers")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time to read a whole request")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "time to handle a request and write the answer")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to let requests finish on SIGTERM")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", c.ShutdownDelay, "on SIGTERM, keep serving every request this long with /readyz answering 503, so load balancers stop sending requests here before the listener closes; a second signal ends it (0: close at once)")

	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn or error")
	fs.BoolVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics at /metrics (--metrics=false turns them off)")
	fs.BoolVar(&c.Audit, "audit", c.Audit, "write an audit line per encode/decode request (--audit=false turns it off)")
	fs.StringVar(&c.AuditLog, "audit-log", c.AuditLog, "append the audit log (JSON lines) to this file instead of stderr")
	fs.DurationVar(&c.AuditSync, "audit-flush-interval", c.AuditSync, "how often buffered audit lines are written out (and on shutdown); a crash loses at most this much (0: write every line at once)")

	c.Keys.Register(fs) // also annotates every flag's usage with its environment twin
	return fs
}

// ParseFlags parses args and the environment into m.Config and checks it.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	fs := m.Config.FlagSet(m.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, m.LookupEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (subcommands: keys, decode, blind-index, healthcheck)", fs.Arg(0))
	}
	if err := checkEmptyKeysFile(fs, args, m.LookupEnv); err != nil {
		return err
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	return m.checkDevKeys(fs)
}

// checkDevKeys applies the development key policy (keyconfig's
// CheckDevKeys): the development key file is for the loopback default
// without authentication, with no CODEC_SERVER_* variable that names no
// flag (a misspelled CODEC_SERVER_KEYS_FILE), outside Kubernetes.
func (m *Main) checkDevKeys(fs *flag.FlagSet) error {
	c := &m.Config
	u := keyconfig.DevKeysUse{Address: c.Listen, AddressName: "--listen", LookupEnv: m.LookupEnv}
	switch {
	case c.AuthConfigured():
		u.Auth = "authentication is configured"
	case c.InsecureNoAuth:
		u.Auth = "--insecure-no-auth is set"
	}
	if u.LookupEnv == nil {
		u.LookupEnv = os.LookupEnv
	}
	if m.Environ != nil {
		u.Environ = m.Environ()
	}
	known := keyconfig.FlagEnvNames(fs)
	u.Known = func(name string) bool { return known[name] }
	return c.Keys.CheckDevKeys(u)
}

// defaultKeys is the keyring configuration of `codec-server` with no
// flags: the development key file.
func defaultKeys() keyconfig.Config {
	k := keyconfig.Default()
	k.DevKeysFile = keyconfig.DefaultDevKeysFile
	return k
}

const usageHeader = `Usage:
  codec-server [flags]                        serve the envelope codec over HTTP
  codec-server keys new|add|promote|rotate|retire|add-legacy|list  manage a local key file
  codec-server keys init-subject-store ...    create a data subject key store (docs/ERASURE.md)
  codec-server keys shred --namespace NS --subject ID ...  erase a data subject's payloads in NS
  codec-server keys readmit --namespace NS --subject ID ...  let a shredded data subject be sealed for again
  codec-server healthcheck [--url URL]        GET /healthz; exit 1 unless it answers 200
  codec-server decode [flags] [FILE]          print 'temporal workflow show -o json' output decoded
  codec-server blind-index [flags] --field F VALUE  search tokens or a query clause (docs/SEARCH.md)
  codec-server --version                      module version and VCS revision

Every flag can be set by the environment variable named after it; flags win.
See docs/SERVER.md.

Flags:
`

// AuthConfigured reports whether JWT or mTLS identities are configured.
func (c *Config) AuthConfigured() bool {
	return c.JWKSURL != "" || c.OIDCIssuer != "" || c.JWKSFile != "" || len(c.ClientPermissions) > 0
}

// Validate checks the configuration without touching files or the
// network.
func (c *Config) Validate() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if !c.AuthConfigured() && !c.InsecureNoAuth && !loopback.Host(host) {
		return fmt.Errorf("no authentication configured and --listen %s is not a loopback address: anyone who reaches it could decrypt payloads. Configure --jwks-url/--oidc-issuer/--jwks-file or mTLS (--tls-client-ca with --client-permission), listen on 127.0.0.1, or pass --insecure-no-auth", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if len(c.ClientPermissions) > 0 && c.TLSClientCA == "" {
		return errors.New("--client-permission needs --tls-client-ca")
	}
	jwtOn := c.JWKSURL != "" || c.OIDCIssuer != "" || c.JWKSFile != ""
	if c.TLSClientCA != "" && len(c.ClientPermissions) == 0 && !jwtOn && !loopback.Host(host) {
		return fmt.Errorf("--tls-client-ca without --client-permission on %s would give every certificate the CA signed every permission: map certificates with --client-permission, or say so explicitly with --client-permission '*=<namespace>:<role>'", c.Listen)
	}
	if c.PermissionsRegex != "" {
		if _, err := codecserver.CompilePermissionsRegex(c.PermissionsRegex); err != nil {
			return fmt.Errorf("--jwt-permissions-regex: %w", err)
		}
	}
	if c.JWTMaxLifetime < 0 || c.AuditSync < 0 || c.ShutdownDelay < 0 {
		return errors.New("--jwt-max-lifetime, --audit-flush-interval and --shutdown-delay cannot be negative")
	}
	if c.MaxMetadata <= 0 || c.MaxInFlightBytes <= 0 || c.MaxDecompressed <= 0 || c.MaxConnections <= 0 {
		return errors.New("--max-metadata-entries, --max-inflight-body-bytes, --max-decompressed-bytes and --max-connections must be positive")
	}
	if c.MaxInFlightBytes < c.MaxBodyBytes {
		return errors.New("--max-inflight-body-bytes must be at least --max-body-bytes")
	}
	for _, o := range c.CORSOrigins {
		if _, err := codecserver.NormalizeOrigin(o); err != nil {
			return fmt.Errorf("--cors-origin: %w", err)
		}
	}
	if err := codecserver.ValidNamespace(c.DefaultNamespace); err != nil {
		return fmt.Errorf("--default-namespace: %w", err)
	}
	if _, err := ParseNamespaceAliases(c.NamespaceAliases); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.MaxBodyBytes <= 0 || c.MaxPayloads <= 0 {
		return errors.New("--max-body-bytes and --max-payloads must be positive")
	}
	return c.Keys.Validate()
}

// Logger returns the server's logger (valid after Run).
func (m *Main) Logger() *slog.Logger {
	if m.logger == nil {
		return slog.New(slog.NewTextHandler(m.Stderr, nil))
	}
	return m.logger
}

// Addr returns the address the server listens on (valid after Run), e.g.
// 127.0.0.1:53211 for --listen 127.0.0.1:0.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// URL returns the server's base URL (valid after Run).
func (m *Main) URL() string {
	scheme := "http"
	if m.Config.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + m.Addr()
}

// Done is closed (after sending any serve error) when the server stops.
func (m *Main) Done() <-chan error { return m.done }

// Run opens the keyring, builds the server and starts serving in the
// background. It returns once the listener is open.
func (m *Main) Run(ctx context.Context) (err error) {
	c := &m.Config
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	hopts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		m.logger = slog.New(slog.NewJSONHandler(m.Stderr, hopts))
	} else {
		m.logger = slog.New(slog.NewTextHandler(m.Stderr, hopts))
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel

	var metrics *codecserver.Metrics
	if c.Metrics {
		metrics = codecserver.NewMetrics()
	}
	if metrics != nil {
		c.Keys.OnReload = metrics.ObserveKeyReload
	}
	if src := c.Keys.Source(); src == "file" || src == keyconfig.DevFileSource {
		// Keys from a file: its reload metrics are exported from the
		// start, also with --keys-reload 0.
		metrics.ExportKeyFileReloads()
	}
	codecs, kr, err := m.openCodecs(ctx, metrics)
	if err != nil {
		return err
	}
	scfg := codecserver.Config{
		Codecs:           codecs,
		Keyring:          kr,
		DefaultNamespace: c.DefaultNamespace,
		CORSOrigins:      c.CORSOrigins,
		CORSMaxAge:       c.CORSMaxAge,
		MaxBodyBytes:     c.MaxBodyBytes,
		MaxPayloads:      c.MaxPayloads,
		Logger:           m.logger,
		// Named fields below keep the literal above untouched.
		MaxMetadataEntries:   c.MaxMetadata,
		MaxInFlightBodyBytes: c.MaxInFlightBytes,
		Metrics:              metrics,
		// The handshake verifies a client certificate if one is given;
		// /encode and /decode require one, probes and /metrics do not.
		RequireClientCert: c.TLSClientCA != "",
	}
	if err := m.configureAuth(ctx, &scfg); err != nil {
		return err
	}
	if c.Audit {
		w := io.Writer(m.Stderr)
		if c.AuditLog != "" {
			f, err := os.OpenFile(c.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				return fmt.Errorf("--audit-log: %w", err)
			}
			m.closers = append(m.closers, f)
			w = f
		}
		// Buffered: one write per batch, not per request. Closed (so
		// flushed) after the HTTP server has shut down and before the file.
		aw := codecserver.NewAuditWriter(metrics.CountAuditErrors(w), c.AuditSync)
		m.closers = append(m.closers, aw)
		scfg.AuditWriter = aw // the same JSON lines as a slog JSON handler, without slog
	}
	srv, err := codecserver.New(scfg)
	if err != nil {
		return err
	}
	m.handler = srv

	tlsCfg, err := m.tlsConfig(bg, metrics)
	if err != nil {
		return err
	}

	m.srv = &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    codecserver.MaxHeaderBytes,
		TLSConfig:         tlsCfg,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bg },
	}
	if m.ln, err = net.Listen("tcp", c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// At most MaxConnections are accepted at once; the others wait in the
	// kernel's backlog, holding none of the server's memory.
	ln := netutil.LimitListener(m.ln, c.MaxConnections)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	go func() {
		err := m.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.done <- err
		close(m.done)
	}()
	auth := "none"
	switch {
	case scfg.JWT != nil && scfg.ClientCertPermissions != nil:
		auth = "jwt+mtls"
	case scfg.JWT != nil:
		auth = "jwt"
	case scfg.ClientCertPermissions != nil:
		auth = "mtls"
	}
	origins := make([]string, len(scfg.CORSOrigins))
	for i, o := range scfg.CORSOrigins {
		origins[i], _ = codecserver.NormalizeOrigin(o)
	}
	m.logger.Info("codec server listening", "url", m.URL(), "auth", auth, "keyring", c.Keys.Source(),
		"cors_origins", strings.Join(origins, ","), "metrics", c.Metrics, "audit", c.Audit, "mtls", c.TLSClientCA != "")
	return nil
}

// openCodecs opens the keys (keyconfig) and builds the codec chain the
// server decodes with: the envelope codec, then zlib with --zlib.
func (m *Main) openCodecs(ctx context.Context, metrics *codecserver.Metrics) ([]converter.PayloadCodec, keyring.Keyring, error) {
	c := &m.Config
	keys, err := c.Keys.Open(ctx, m.logger)
	if err != nil {
		return nil, nil, err
	}
	m.closers = append(m.closers, keys)
	kr := codecserver.InstrumentKeyring(keys.Keyring, metrics)
	aliases, err := ParseNamespaceAliases(c.NamespaceAliases)
	if err != nil {
		return nil, nil, err
	}
	codecs, err := codecChain(kr, codec.Options{
		Namespace:            c.DefaultNamespace,
		DecodeObserver:       metrics.ObserveDecode,
		NamespaceAliases:     aliases,
		RefuseV1:             c.RefuseV1,
		RefuseLegacy:         c.RefuseLegacy,
		RequireEncryption:    c.RequireEncryption,
		MaxDecompressedBytes: c.MaxDecompressed,
	}, c.Zlib)
	return codecs, kr, err
}

// codecChain is the codec chain of the server and of decode: the envelope
// codec on kr, then, with zlib, the SDK's zlib codec for decoding.
func codecChain(kr keyring.Keyring, opts codec.Options, zlib bool) ([]converter.PayloadCodec, error) {
	cdc, err := codec.New(kr, opts)
	if err != nil {
		return nil, err
	}
	codecs := []converter.PayloadCodec{cdc}
	if zlib {
		codecs = append(codecs, codec.NewZlib(codec.ZlibOptions{DecodeOnly: true, MaxDecompressedBytes: opts.MaxDecompressedBytes}))
	}
	return codecs, nil
}

// configureAuth sets the JWT verifier and the client certificate
// permissions of scfg, or, with neither, serving without authentication.
func (m *Main) configureAuth(ctx context.Context, scfg *codecserver.Config) error {
	c := &m.Config
	var err error
	if c.JWKSURL != "" || c.OIDCIssuer != "" || c.JWKSFile != "" {
		v, err := codecserver.NewJWTVerifier(ctx, codecserver.JWTConfig{
			JWKSURL: c.JWKSURL, OIDCIssuer: c.OIDCIssuer, JWKSFile: c.JWKSFile,
			Issuer: c.JWTIssuer, Audience: c.JWTAudience,
			Algorithms:       keyconfig.SplitList(c.JWTAlgorithms),
			PermissionsClaim: c.PermissionsClaim, Skew: c.JWTSkew, Logger: m.logger,
			PermissionsRegex: c.PermissionsRegex, MaxLifetime: c.JWTMaxLifetime,
		})
		if err != nil {
			return err
		}
		scfg.JWT = v
		if c.JWTAudience == "" {
			m.logger.Warn("JWT: no --jwt-audience: tokens minted for other services are accepted too")
		}
	}
	if len(c.ClientPermissions) > 0 {
		if scfg.ClientCertPermissions, err = codecserver.ParseClientCertPermissions(c.ClientPermissions); err != nil {
			return err
		}
	}
	if !c.AuthConfigured() {
		scfg.Unauthenticated = true
		// On loopback, answer only requests for a loopback name: a web
		// page cannot reach the server through DNS rebinding.
		host, _, _ := net.SplitHostPort(c.Listen)
		scfg.LoopbackHostOnly = loopback.Host(host)
		if len(scfg.CORSOrigins) == 0 {
			scfg.CORSOrigins = DevUIOrigins
		}
		if c.InsecureNoAuth {
			m.logger.Warn("NO AUTHENTICATION (--insecure-no-auth): anyone who can reach this address can decrypt payloads", "listen", c.Listen)
		} else {
			m.logger.Warn("no authentication configured: serving on loopback only; configure JWT or mTLS before exposing it", "listen", c.Listen)
		}
	}
	return nil
}

// tlsConfig returns the TLS configuration (nil without --tls-cert), with
// the certificate and the client CA reloaded every --tls-reload until bg
// ends.
func (m *Main) tlsConfig(bg context.Context, metrics *codecserver.Metrics) (*tls.Config, error) {
	c := &m.Config
	var tlsCfg *tls.Config
	if c.TLSCert != "" {
		cr, err := codecserver.NewCertReloader(c.TLSCert, c.TLSKey, m.logger, metrics)
		if err != nil {
			return nil, err
		}
		var ca *codecserver.ClientCAReloader
		if c.TLSClientCA != "" {
			if ca, err = codecserver.NewClientCAReloader(c.TLSClientCA, m.logger); err != nil {
				return nil, err
			}
		}
		if tlsCfg, err = codecserver.TLSConfigReloading(cr, ca); err != nil {
			return nil, err
		}
		if c.TLSReload > 0 {
			m.wg.Add(1)
			go func() { defer m.wg.Done(); cr.Watch(bg, c.TLSReload) }()
			if ca != nil {
				m.wg.Add(1)
				go func() { defer m.wg.Done(); ca.Watch(bg, c.TLSReload) }()
			}
		}
	}
	return tlsCfg, nil
}

// DefaultShutdownDelay is --shutdown-delay: long enough for a load
// balancer that checks /readyz every second or two (and for Kubernetes
// to take a terminating pod out of its Service's endpoints) to stop
// sending requests here, short enough not to slow a rollout down.
const DefaultShutdownDelay = 5 * time.Second

// Drain begins a shutdown (call it before Close): for --shutdown-delay
// /readyz answers 503 while every request is still served, each answer
// asking its client to close the connection, so that load balancers and
// clients move to other replicas before the listener closes. It returns
// after the delay, or at once when ctx ends (a second signal).
func (m *Main) Drain(ctx context.Context) {
	d := m.Config.ShutdownDelay
	if d <= 0 || m.handler == nil {
		return
	}
	m.handler.Drain()
	m.Logger().Info("draining: /readyz answers 503, requests are still served; a second signal stops at once", "shutdown_delay", d)
	select {
	case <-time.After(d):
	case <-ctx.Done():
		m.Logger().Info("second signal: not waiting out --shutdown-delay")
	}
}

// Close stops accepting requests, lets running ones finish within
// ShutdownTimeout, and releases the keyring.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.srv != nil {
			if m.logger != nil {
				m.logger.Info("closing the listener; letting requests in flight finish", "shutdown_timeout", m.Config.ShutdownTimeout)
			}
			ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
			defer cancel()
			if e := m.srv.Shutdown(ctx); e != nil {
				err = fmt.Errorf("shutdown: %w", e)
			}
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		for i := len(m.closers) - 1; i >= 0; i-- {
			if e := m.closers[i].Close(); e != nil && err == nil {
				err = e
			}
		}
		if m.logger != nil && m.srv != nil && m.ln != nil { // a server that never started did not stop
			m.logger.Info("codec server stopped")
		}
	})
	return err
}

// ParseNamespaceAliases turns --namespace-alias values NEW=OLD into
// codec.Options.NamespaceAliases (NEW -> its OLD namespaces).
func ParseNamespaceAliases(values []string) (map[string][]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := make(map[string][]string)
	for _, v := range values {
		to, from, ok := strings.Cut(v, "=")
		if !ok {
			return nil, fmt.Errorf("--namespace-alias %q: want NEW=OLD", v)
		}
		for _, ns := range []string{to, from} {
			if err := codecserver.ValidNamespace(ns); err != nil {
				return nil, fmt.Errorf("--namespace-alias %q: %w", v, err)
			}
		}
		if to == from {
			return nil, fmt.Errorf("--namespace-alias %q: a namespace needs no alias for itself", v)
		}
		out[to] = append(out[to], from)
	}
	return out, nil
}
