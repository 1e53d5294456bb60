package codecserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// Defaults for [Config].
const (
	// DefaultMaxBodyBytes is 8 MiB: a request at the limit takes a few
	// times its size in heap while it is decoded (body, payloads, answer),
	// so that several fit in the 256 MiB of deploy/kubernetes. A Temporal
	// history page (gRPC messages are at most 4 MiB) fits in base64.
	DefaultMaxBodyBytes  = 8 << 20
	DefaultMaxPayloads   = 10000
	DefaultReadyzTimeout = 3 * time.Second
	// DefaultMaxMetadataEntries bounds the metadata entries of all
	// payloads in one request: 10 per payload at DefaultMaxPayloads, where
	// a real payload has 1 to 5 (encoding, messageType, the envelope's
	// own). An empty entry costs ~6 bytes of body and ~200 bytes of heap.
	DefaultMaxMetadataEntries = 100000
	// DefaultMaxInFlightBodyBytes bounds the bytes all requests hold
	// together: body buffers, the objects parsing makes (codec.ObjectCost
	// each), what /decode decompresses and the answers, each reserved
	// before it is allocated. One identity holds at most 3/4 of it (36
	// MiB): enough for a request at DefaultMaxBodyBytes or one
	// decompressing DefaultMaxDecompressedBytes, while the whole server
	// stays well inside the 256 MiB of deploy/kubernetes (docs/SERVER.md,
	// measured).
	DefaultMaxInFlightBodyBytes = 6 * DefaultMaxBodyBytes
	// DefaultMaxDecompressedBytes is what the codec-server binary gives
	// codec.Options.MaxDecompressedBytes and ZlibOptions: 12 MiB, whose
	// answer (16 MiB of base64) fits with it in one identity's share of
	// DefaultMaxInFlightBodyBytes.
	DefaultMaxDecompressedBytes = 12 << 20
	// DefaultMaxConnections bounds the connections the binary accepts at
	// once; each waiting for its headers holds up to ~MaxHeaderBytes.
	DefaultMaxConnections = 1024
	// MaxHeaderBytes bounds a request's header block (Go adds 4 KiB of
	// slack): a token is at most 16 KiB.
	MaxHeaderBytes = 32 << 10
	// DefaultReadyzCacheTTL is how long a /readyz verdict is reused.
	DefaultReadyzCacheTTL = 2 * time.Second
)

// NamespaceHeader names the namespace of a request's payloads.
const NamespaceHeader = "X-Namespace"

// Config configures a [Server]. Codec or Codecs is required, and so is one
// way to authenticate (JWT or ClientCertPermissions) unless Unauthenticated
// is set. All other fields are optional.
type Config struct {
	// Codec encodes and decodes; the server calls Codec.ForNamespace with
	// each request's namespace. Setting it is the same as setting Codecs to
	// just this codec; set one of the two.
	Codec *codec.Codec
	// Codecs is a chain of codecs applied in order as by the SDK's
	// converter.NewPayloadCodecHTTPHandler(codecs...) and
	// NewCodecDataConverter: /decode runs Codecs[0] first, /encode runs the
	// last first. For the Temporal samples' layout list the envelope codec
	// first and a compression codec (codec.NewZlib) after it. Codecs that
	// implement converter.PayloadCodecWithSerializationContext (the envelope
	// codec does) get each request's namespace through
	// WithSerializationContext (once for DefaultNamespace, the result
	// reused by every request for it); codecs with
	// EncodeContext/DecodeContext methods get the request's context.
	Codecs []converter.PayloadCodec
	// Keyring, when it implements keyring.Checker, backs /readyz.
	Keyring keyring.Keyring

	// DefaultNamespace is used when a request names none. Default:
	// "default".
	DefaultNamespace string

	// JWT checks bearer tokens.
	JWT *JWTVerifier
	// ClientCertPermissions grants permissions to verified client
	// certificates (mTLS) by subject common name; requests without an
	// Authorization header are judged by their certificate.
	ClientCertPermissions ClientCertPermissions
	// Unauthenticated serves everyone with every permission. Only use this
	// if the server is reachable only from trusted clients (loopback), and
	// then set LoopbackHostOnly too.
	Unauthenticated bool
	// LoopbackHostOnly refuses (403, reason host_not_allowed) every
	// request whose Host header is not localhost or a loopback IP address,
	// with any port. Set it when serving Unauthenticated on a loopback
	// address: it defeats DNS rebinding, where a web page reaches the
	// server through a name of the attacker's that resolves to 127.0.0.1.
	LoopbackHostOnly bool
	// RequireClientCert refuses /encode and /decode (403) to requests
	// without a client certificate verified by TLS, whatever else they
	// carry; /healthz, /readyz and /metrics stay open so that probes and
	// scrapers need none. Set it whenever the TLS configuration has client
	// CAs ([TLSConfig] with a client CA file verifies a certificate if one
	// is given but does not require one).
	RequireClientCert bool

	// CORSOrigins are the exact origins browsers may call from (the Web
	// UI's). "*" is refused. None means no CORS headers.
	CORSOrigins []string
	// CORSMaxAge is how long browsers cache a preflight. Default: 10m.
	CORSMaxAge time.Duration

	// MaxBodyBytes bounds a request body (413 above). Default: 8 MiB.
	MaxBodyBytes int64
	// MaxPayloads bounds the payloads in one request (413 above).
	// Default: 10000.
	MaxPayloads int
	// MaxMetadataEntries bounds the metadata entries of all payloads in
	// one request (413 above), counted before the body is parsed.
	// Default: DefaultMaxMetadataEntries.
	MaxMetadataEntries int
	// MaxInFlightBodyBytes bounds the request body bytes (buffer capacity)
	// and the bytes /decode decompresses (codecs that take a context, see
	// codec.WithDecompressionBudget) all requests hold together; a request
	// that would pass it gets 503 with Retry-After. Default:
	// DefaultMaxInFlightBodyBytes.
	MaxInFlightBodyBytes int64

	// ReadyzCacheTTL is how long a /readyz verdict is reused; concurrent
	// probes share one keyring check. Default: DefaultReadyzCacheTTL;
	// negative checks on every probe (concurrent ones still share).
	ReadyzCacheTTL time.Duration

	// Logger receives failures (with the request ID and the reason) and
	// start-up messages. Default: slog.Default().
	Logger *slog.Logger
	// AuditLog, when set, receives one line per encode or decode request.
	AuditLog *slog.Logger
	// AuditWriter, when set (and AuditLog is not), receives the same
	// audit lines as AuditLog with a slog JSON handler would (plus
	// "log":"audit"), encoded without slog, one Write per line. Give it an
	// [AuditWriter] to batch the writes.
	AuditWriter io.Writer
	// Metrics, when set, are updated and served at /metrics.
	Metrics *Metrics
}

// Server is the codec server's HTTP handler.
type Server struct {
	cfg     Config
	codecs  chain
	auth    *authenticator
	handler http.Handler
	budget  *byteBudget
	ready   readyCache

	// defaultCodecs is codecs bound to cfg.DefaultNamespace, once, by the
	// first request for it: most requests name no other namespace.
	defaultCodecs chain
	defaultOnce   sync.Once

	draining atomic.Bool // set by Drain
}

// New checks cfg and returns a Server. Misconfiguration (no codec, no
// auth without Unauthenticated, a bad CORS origin) fails here.
func New(cfg Config) (*Server, error) {
	codecs := chain(cfg.Codecs)
	switch {
	case cfg.Codec != nil && len(cfg.Codecs) > 0:
		return nil, errors.New("codecserver: set Config.Codec or Config.Codecs, not both")
	case cfg.Codec != nil:
		codecs = chain{cfg.Codec}
	case len(cfg.Codecs) == 0:
		return nil, errors.New("codecserver: Config.Codec is nil and Config.Codecs is empty")
	}
	for i, c := range codecs {
		if c == nil {
			return nil, fmt.Errorf("codecserver: Config.Codecs[%d] is nil", i)
		}
	}
	if cfg.DefaultNamespace == "" {
		cfg.DefaultNamespace = codec.DefaultNamespace
	}
	if err := ValidNamespace(cfg.DefaultNamespace); err != nil {
		return nil, fmt.Errorf("codecserver: default namespace: %w", err)
	}
	if cfg.JWT == nil && cfg.ClientCertPermissions == nil && !cfg.Unauthenticated {
		return nil, errors.New("codecserver: no authentication configured: set JWT or ClientCertPermissions, or Unauthenticated on purpose")
	}
	if (cfg.JWT != nil || cfg.ClientCertPermissions != nil) && cfg.Unauthenticated {
		return nil, errors.New("codecserver: Unauthenticated set together with an authentication method")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxPayloads == 0 {
		cfg.MaxPayloads = DefaultMaxPayloads
	}
	if cfg.MaxMetadataEntries == 0 {
		cfg.MaxMetadataEntries = DefaultMaxMetadataEntries
	}
	if cfg.MaxInFlightBodyBytes == 0 {
		cfg.MaxInFlightBodyBytes = DefaultMaxInFlightBodyBytes
	}
	if cfg.ReadyzCacheTTL == 0 {
		cfg.ReadyzCacheTTL = DefaultReadyzCacheTTL
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxPayloads < 0 || cfg.MaxMetadataEntries < 0 || cfg.MaxInFlightBodyBytes < 0 {
		return nil, errors.New("codecserver: negative limit")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	corsMW, err := CORS(cfg.CORSOrigins, cfg.CORSMaxAge)
	if err != nil {
		return nil, err
	}
	if cfg.MaxInFlightBodyBytes < cfg.MaxBodyBytes {
		return nil, fmt.Errorf("codecserver: MaxInFlightBodyBytes (%d) is below MaxBodyBytes (%d): a request at the body limit could never be served", cfg.MaxInFlightBodyBytes, cfg.MaxBodyBytes)
	}
	s := &Server{cfg: cfg, codecs: codecs, auth: &authenticator{jwt: cfg.JWT, certs: cfg.ClientCertPermissions, open: cfg.Unauthenticated, requireCert: cfg.RequireClientCert},
		budget: newByteBudget(cfg.MaxInFlightBodyBytes)}
	cfg.Metrics.registerBudgetGauge(s.budget)

	r := chi.NewRouter()
	r.Use(RequestID, noStore, s.recoverer)
	if cfg.Metrics != nil {
		r.Use(cfg.Metrics.instrument)
	}
	if cfg.LoopbackHostOnly {
		r.Use(s.loopbackHostOnly)
	}
	r.Use(corsMW)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, newError(http.StatusNotFound, "not_found", "not found: the codec server serves POST /encode, POST /decode, /{namespace}/encode|decode, GET /healthz, /readyz, /metrics", nil))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, newError(http.StatusMethodNotAllowed, "method_not_allowed", "method "+truncate.To(r.Method, 16)+" not allowed", nil))
	})
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics.Handler())
	}
	for _, op := range []struct {
		name   string
		action Action
	}{{"encode", ActionEncode}, {"decode", ActionDecode}} {
		// A panic in the handler becomes a 500 here, inside the audit and
		// metrics middleware, so both count it like any other failure (the
		// outer recoverer still catches panics in the middleware).
		h := s.recoverer(s.codecHandler(op.action))
		h = s.limitBody(cfg.MaxBodyBytes)(h)
		if cfg.AuditLog != nil {
			h = audit(slogAudit(cfg.AuditLog), op.name)(h)
		} else if cfg.AuditWriter != nil {
			h = audit(jsonAudit(cfg.AuditWriter), op.name)(h)
		}
		r.Method(http.MethodPost, "/"+op.name, h)
		r.Method(http.MethodPost, "/{namespace}/"+op.name, h)
	}
	s.handler = r
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		// The client opens a new connection for its next request, which
		// the load balancer sends to a replica that is not shutting down.
		w.Header().Set("Connection", "close")
	}
	s.handler.ServeHTTP(w, r)
}

// Drain prepares a shutdown: from now on /readyz answers 503 (reason
// not_ready, "shutting down"), so that load balancers and Kubernetes stop
// sending new requests here, and every answer asks its client to close
// the connection (Connection: close), so that clients holding keep-alive
// connections open new ones elsewhere. Every request is still served,
// /healthz still answers 200. The caller waits for the load balancers to
// notice, then shuts the http.Server down.
func (s *Server) Drain() { s.draining.Store(true) }

// errDraining is why /readyz answers 503 during a drain.
var errDraining = errors.New("draining before shutdown")

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.fail(w, r, newError(http.StatusServiceUnavailable, "not_ready", "shutting down", errDraining))
		return
	}
	if c, ok := s.cfg.Keyring.(keyring.Checker); ok {
		if err := s.ready.check(r.Context(), c, s.cfg.ReadyzCacheTTL); err != nil {
			s.fail(w, r, newError(http.StatusServiceUnavailable, "not_ready", "keyring not ready", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// codecHandler serves /encode and /decode (and their namespace forms).
func (s *Server) codecHandler(action Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		// Two values of a header a proxy may read differently (the first
		// or the last) are refused before anything reads one of them.
		for _, h := range [...]string{NamespaceHeader, "Authorization"} {
			if len(r.Header.Values(h)) > 1 {
				if h == NamespaceHeader {
					st.namespace = auditValue(strings.Join(r.Header.Values(NamespaceHeader), ","))
				}
				s.fail(w, r, newError(http.StatusBadRequest, "duplicate_header", "the "+h+" header is given more than once", nil))
				return
			}
		}
		// Resolve first so that refused requests are logged with their
		// namespace too; authenticate before saying what is wrong with it.
		pathNS, headerNS := chi.URLParam(r, "namespace"), r.Header.Get(NamespaceHeader)
		ns, nsErr := ResolveNamespace(pathNS, headerNS, s.cfg.DefaultNamespace)
		st.namespace = ns
		if nsErr != nil {
			raw := pathNS
			if raw == "" || (headerNS != "" && ValidNamespace(pathNS) == nil) {
				raw = headerNS
			}
			st.namespace = auditValue(raw)
		}
		id, err := s.auth.authenticate(r.Context(), r)
		if err != nil {
			writeAuthChallenge(w, err)
			s.fail(w, r, err)
			return
		}
		st.subject, st.auth = id.Subject, id.Method
		if nsErr != nil {
			s.fail(w, r, newError(http.StatusBadRequest, "namespace", nsErr.Error(), nil))
			return
		}
		if !id.Permissions.Allows(ns, action) {
			need := "read"
			if action == ActionEncode {
				need = "write"
			}
			s.fail(w, r, newError(http.StatusForbidden, "forbidden",
				fmt.Sprintf("%s on namespace %q needs the %s permission (%s:%s)", action, ns, need, ns, need), nil))
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) {
			s.fail(w, r, newError(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"Content-Type must be application/json", nil))
			return
		}
		// Everything the request holds is reserved from the in-flight
		// budget, in the share of its identity, before it is allocated:
		// the body as it arrives, the objects parsing makes, what /decode
		// decompresses and the answer.
		res := s.budget.reserve(budgetIdentity(id, r))
		defer res.release() // deferred before anything that may panic
		body, err := s.readBody(r, res)
		if err != nil {
			var mbe *http.MaxBytesError
			var he *Error
			if !errors.As(err, &mbe) && !errors.As(err, &he) {
				err = newError(http.StatusBadRequest, "bad_request", "cannot read the request body", err)
			}
			s.fail(w, r, err)
			return
		}
		// Count before protojson builds a message per payload and a map
		// entry per metadata entry: a body of empty payloads or empty
		// entries would otherwise cost ~30-50x its size in heap.
		verdict, counts := scanBodyCounts(body, s.cfg.MaxPayloads, s.cfg.MaxMetadataEntries)
		switch verdict {
		case scanTooManyPayloads:
			s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "too_many_payloads",
				fmt.Sprintf("too many payloads in one request: at most %d allowed (each externalPayloads entry counts as one)", s.cfg.MaxPayloads), nil))
			return
		case scanTooMuchMetadata:
			s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "too_much_metadata",
				fmt.Sprintf("too many metadata entries in one request: at most %d allowed", s.cfg.MaxMetadataEntries), nil))
			return
		}
		if err := res.take(counts.objects() * codec.ObjectCost); err != nil {
			s.fail(w, r, err)
			return
		}
		var in commonpb.Payloads
		if ps, ok := unmarshalPayloads(body); ok {
			in.Payloads = ps
		} else if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &in); err != nil {
			s.fail(w, r, newError(http.StatusBadRequest, "bad_request", `malformed request: want JSON {"payloads":[...]} in protojson`, protojsonDetail(err)))
			return
		}
		st.count = len(in.Payloads)
		if len(in.Payloads) > s.cfg.MaxPayloads {
			s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "too_many_payloads",
				fmt.Sprintf("%d payloads in one request, at most %d allowed", len(in.Payloads), s.cfg.MaxPayloads), nil))
			return
		}
		if action == ActionEncode {
			if i := claimsEncrypted(in.Payloads); i >= 0 {
				s.fail(w, r, newError(http.StatusUnprocessableEntity, "already_encrypted",
					fmt.Sprintf("payload %d already says it is encrypted (encoding %s): /encode seals only plain payloads", i, encodingEncrypted), nil))
				return
			}
		}
		var c chain
		if ns == s.cfg.DefaultNamespace {
			s.defaultOnce.Do(func() { s.defaultCodecs = s.codecs.forNamespace(ns) })
			c = s.defaultCodecs
		} else {
			c = s.codecs.forNamespace(ns)
		}
		var out []*commonpb.Payload
		if action == ActionEncode {
			out, err = c.encode(r.Context(), in.Payloads)
		} else {
			// What the codecs decompress, and the objects decompressed or
			// decrypted payloads unmarshal into, count against the budget
			// like the body: a few kilobytes of zlib must not make the
			// server hold tens of megabytes per request.
			ctx := codec.WithDecompressionBudget(r.Context(), res.take)
			// Metadata entries (and external payload details) inside
			// sealed or compressed payloads count against the same limit
			// as those of the body.
			var inner atomic.Int64
			ctx = codec.WithObjectCount(ctx, func(n int) error {
				if int64(counts.metadata)+inner.Add(int64(n)) > int64(s.cfg.MaxMetadataEntries) {
					return newError(http.StatusRequestEntityTooLarge, "too_much_metadata",
						fmt.Sprintf("too many metadata entries in one request, counting those inside sealed or compressed payloads: at most %d allowed", s.cfg.MaxMetadataEntries), nil)
				}
				return nil
			})
			var erased int
			if out, erased, err = c.decode(ctx, in.Payloads); err == nil && erased > 0 {
				w.Header().Set(ErasedHeader, strconv.Itoa(erased))
				st := stateOf(r)
				st.erased = erased
				s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "erased payloads",
					slog.String("request_id", st.id), slog.String("namespace", st.namespace),
					slog.Int("erased", erased), slog.Int("count", len(in.Payloads)))
			}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp, err := marshalPayloads(out, res.take)
		if err != nil {
			var he *Error
			if errors.As(err, &he) {
				s.fail(w, r, err)
				return
			}
			s.fail(w, r, fmt.Errorf("marshal response: %w", err))
			return
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.counter(s.cfg.Metrics.payloads, action.String()).Add(float64(len(out)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(resp)
	}
}

var protojsonPosition = regexp.MustCompile(`\(line \d+:\d+\)`)

// protojsonDetail is what the log may say about a protojson error: where
// the body went wrong, never the text of the error, which quotes the
// offending value (for /encode, plaintext).
func protojsonDetail(err error) error {
	if pos := protojsonPosition.FindString(err.Error()); pos != "" {
		return errors.New("protojson rejected the body at " + strings.Trim(pos, "()"))
	}
	return errors.New("protojson rejected the body")
}

// fail answers with the status Classify chooses and {"error": msg}, and
// logs the detail with the request ID.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, reason, msg := Classify(err)
	st := stateOf(r)
	st.reason = reason
	var ne *codec.NamespaceError
	if errors.As(err, &ne) {
		st.sealedNamespace = ne.Sealed
	}
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	if errors.Is(err, errDraining) {
		// Every probe of a load balancer during --shutdown-delay gets this:
		// it is the drain working, not a failure.
		level = slog.LevelInfo
	}
	if status == http.StatusServiceUnavailable && reason != "canceled" {
		// Every 503 is worth a retry (busy, key service down, timed out,
		// not ready); say when.
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	s.cfg.Logger.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", st.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.String("reason", reason),
		slog.String("namespace", st.namespace),
		slog.String("subject", st.subject),
		slog.String("remote", r.RemoteAddr),
		slog.String("err", err.Error()),
	)
	writeJSON(w, status, map[string]string{"error": msg})
}

// recoverer turns a panic into a 500 with the request ID logged.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.fail(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// encodingEncrypted is the encoding of sealed payloads (envelope's and
// the Temporal samples').
const encodingEncrypted = "binary/encrypted"

// claimsEncrypted returns the index of the first payload whose encoding
// says it is encrypted, or -1. The codec passes such payloads through
// unsealed, so /encode refuses them: it must never hand back, as if
// sealed, a payload it did not seal (plaintext under an encrypted label).
func claimsEncrypted(ps []*commonpb.Payload) int {
	for i, p := range ps {
		if string(p.GetMetadata()["encoding"]) == encodingEncrypted {
			return i
		}
	}
	return -1
}

// isJSON reports whether a Content-Type is application/json (parameters
// such as charset allowed). Requiring it keeps browsers' cross-site
// "simple" requests (text/plain, form types) from ever being processed.
func isJSON(ct string) bool {
	if ct == "application/json" {
		// What the CLI, the Web UI and the SDK send: the answer
		// mime.ParseMediaType gives, without the map it allocates.
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// auditValue is how a refused, untrusted namespace value appears in logs:
// at most 64 bytes, quoted and escaped to ASCII.
func auditValue(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	return strconv.QuoteToASCII(v)
}

// readyCache reuses a /readyz verdict for a while and merges concurrent
// checks into one keyring call.
type readyCache struct {
	mu      sync.Mutex
	at      time.Time
	err     error
	valid   bool
	running chan struct{} // closed when the running check ends
}

// checkRecovered runs k.Check in the goroutine readyCache starts, where no
// recoverer would catch a panic: a panicking keyring check is "not ready",
// not a crashed server.
func checkRecovered(ctx context.Context, k keyring.Checker) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("keyring check panicked: %v", v)
		}
	}()
	return k.Check(ctx)
}

func (c *readyCache) check(ctx context.Context, k keyring.Checker, ttl time.Duration) error {
	c.mu.Lock()
	if c.valid && ttl > 0 && time.Since(c.at) < ttl {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if c.running == nil {
		c.running = make(chan struct{})
		done := c.running
		go func() {
			// The check outlives the probe that started it: others wait
			// for it too.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultReadyzTimeout)
			err := checkRecovered(cctx, k)
			cancel()
			c.mu.Lock()
			c.err, c.at, c.valid, c.running = err, time.Now(), true, nil
			c.mu.Unlock()
			close(done)
		}()
	}
	done := c.running
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
