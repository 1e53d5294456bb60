package codecserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
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
)

// NamespaceHeader names the namespace of a request's payloads.
const NamespaceHeader = "X-Namespace"

// Config configures a [Server]. Codec is required, and so is one way to
// authenticate (JWT or ClientCertPermissions) unless Unauthenticated is
// set. All other fields are optional.
type Config struct {
	// Codec encodes and decodes; the server calls Codec.ForNamespace with
	// each request's namespace.
	Codec *codec.Codec
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

	// Logger receives failures (with the request ID and the reason) and
	// start-up messages. Default: slog.Default().
	Logger *slog.Logger
	// AuditLog, when set, receives one line per encode or decode request.
	AuditLog *slog.Logger
	// Metrics, when set, are updated and served at /metrics.
	Metrics *Metrics
}

// Server is the codec server's HTTP handler.
type Server struct {
	cfg     Config
	auth    *authenticator
	handler http.Handler
}

// New checks cfg and returns a Server. Misconfiguration (no codec, no
// auth without Unauthenticated, a bad CORS origin) fails here.
func New(cfg Config) (*Server, error) {
	if cfg.Codec == nil {
		return nil, errors.New("codecserver: Config.Codec is nil")
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
	if cfg.MaxBodyBytes < 0 || cfg.MaxPayloads < 0 {
		return nil, errors.New("codecserver: negative limit")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	corsMW, err := CORS(cfg.CORSOrigins, cfg.CORSMaxAge)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, auth: &authenticator{jwt: cfg.JWT, certs: cfg.ClientCertPermissions, open: cfg.Unauthenticated, requireCert: cfg.RequireClientCert}}

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
		s.fail(w, r, newError(http.StatusMethodNotAllowed, "method_not_allowed", "method "+truncate(r.Method, 16)+" not allowed", nil))
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
		h := http.Handler(s.codecHandler(op.action))
		h = s.limitBody(cfg.MaxBodyBytes)(h)
		if cfg.AuditLog != nil {
			h = audit(cfg.AuditLog, op.name)(h)
		}
		r.Method(http.MethodPost, "/"+op.name, h)
		r.Method(http.MethodPost, "/{namespace}/"+op.name, h)
	}
	s.handler = r
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.cfg.Keyring.(keyring.Checker); ok {
		ctx, cancel := context.WithTimeout(r.Context(), DefaultReadyzTimeout)
		defer cancel()
		if err := c.Check(ctx); err != nil {
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
		// Resolve first so that refused requests are logged with their
		// namespace too; authenticate before saying what is wrong with it.
		ns, nsErr := ResolveNamespace(chi.URLParam(r, "namespace"), r.Header.Get(NamespaceHeader), s.cfg.DefaultNamespace)
		st.namespace = ns
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
		body, err := readBody(r)
		if err != nil {
			var mbe *http.MaxBytesError
			if !errors.As(err, &mbe) {
				err = newError(http.StatusBadRequest, "bad_request", "cannot read the request body", err)
			}
			s.fail(w, r, err)
			return
		}
		// Count before protojson builds a message per payload: a body of
		// empty payloads would otherwise cost ~50x its size in heap.
		if tooManyPayloads(body, s.cfg.MaxPayloads) {
			s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "too_many_payloads",
				fmt.Sprintf("too many payloads in one request: at most %d allowed", s.cfg.MaxPayloads), nil))
			return
		}
		var in commonpb.Payloads
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &in); err != nil {
			s.fail(w, r, newError(http.StatusBadRequest, "bad_request", `malformed request: want JSON {"payloads":[...]} in protojson`, protojsonDetail(err)))
			return
		}
		st.count = len(in.Payloads)
		if len(in.Payloads) > s.cfg.MaxPayloads {
			s.fail(w, r, newError(http.StatusRequestEntityTooLarge, "too_many_payloads",
				fmt.Sprintf("%d payloads in one request, at most %d allowed", len(in.Payloads), s.cfg.MaxPayloads), nil))
			return
		}
		c := s.cfg.Codec.ForNamespace(ns)
		var out []*commonpb.Payload
		if action == ActionEncode {
			out, err = c.EncodeContext(r.Context(), in.Payloads)
		} else {
			out, err = s.decode(r.Context(), w, r, c, in.Payloads)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp, err := marshalPayloads(out)
		if err != nil {
			s.fail(w, r, fmt.Errorf("marshal response: %w", err))
			return
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.payloads.WithLabelValues(action.String()).Add(float64(len(out)))
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

// readBody reads the (size-capped) body into a buffer sized from
// Content-Length when the client sent one.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > 0 {
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(r.Body)
}
