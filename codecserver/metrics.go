package codecserver

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/envelopecodec/envelope/keyring"
)

// Metrics are the server's Prometheus metrics, on a private registry.
// Names are listed in docs/SERVER.md.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	payloads     *prometheus.CounterVec
	failures     *prometheus.CounterVec
	keyringCalls *prometheus.CounterVec
	dataKeys     *prometheus.CounterVec
	certExpiry   prometheus.Gauge

	auditErrors prometheus.Counter

	keyReloads       *prometheus.CounterVec
	keyReloadFailing prometheus.Gauge
	keyReloadOnce    sync.Once

	// children caches the label-resolved series of the per-request
	// metrics: WithLabelValues hashes the labels and takes a lock on every
	// call, which the one-payload requests of the CLI pay hundreds of
	// times per history.
	children childCache
}

// childKey names one series of one vector in childCache.
type childKey struct {
	vec  any // the *CounterVec or *HistogramVec
	a, b string
	code int
}

// childCache remembers series by their labels. Series are created lazily
// (as WithLabelValues does, so /metrics shows the same series), never
// deleted, and their labels come from a fixed set (route patterns, status
// codes, reasons and operations the server writes), so it stays small.
type childCache struct {
	mu sync.RWMutex
	m  map[childKey]any
}

func (c *childCache) get(k childKey, create func() any) any {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = create()
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[childKey]any)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v
}

// counter returns the series of vec, a vector with one label, for value.
func (m *Metrics) counter(vec *prometheus.CounterVec, value string) prometheus.Counter {
	return m.children.get(childKey{vec: vec, a: value}, func() any {
		return vec.WithLabelValues(value)
	}).(prometheus.Counter)
}

// counter2 returns the series of vec, a vector with two labels, for a, b.
func (m *Metrics) counter2(vec *prometheus.CounterVec, a, b string) prometheus.Counter {
	return m.children.get(childKey{vec: vec, a: a, b: b}, func() any {
		return vec.WithLabelValues(a, b)
	}).(prometheus.Counter)
}

// requestCounter returns the requests_total series of route and code.
func (m *Metrics) requestCounter(route string, code int) prometheus.Counter {
	return m.children.get(childKey{vec: m.requests, a: route, code: code}, func() any {
		return m.requests.WithLabelValues(route, strconv.Itoa(code))
	}).(prometheus.Counter)
}

// durationObserver returns the request_duration_seconds series of route.
func (m *Metrics) durationObserver(route string) prometheus.Observer {
	return m.children.get(childKey{vec: m.duration, a: route}, func() any {
		return m.duration.WithLabelValues(route)
	}).(prometheus.Observer)
}

// NewMetrics returns Metrics registered on a new private registry, with
// the Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "codec_server_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "codec_server_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		payloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "codec_server_payloads_total", Help: "Payloads encoded or decoded successfully.",
		}, []string{"op"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "codec_server_failures_total", Help: "Failed requests by reason.",
		}, []string{"reason"}),
		keyringCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "codec_server_keyring_calls_total", Help: "Keyring calls by operation and outcome.",
		}, []string{"op", "outcome"}),
		dataKeys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "codec_server_decode_data_keys_total", Help: "Data keys found by decodes, by where they came from: decode-cache hits (cache) or keyring unwraps (keyring).",
		}, []string{"source"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "codec_server_tls_cert_expiry_timestamp_seconds", Help: "Expiry (Unix time) of the serving TLS certificate.",
		}),
	}
	m.auditErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "codec_server_audit_write_errors_total", Help: "Failed writes of audit lines (a full disk, a closed pipe): the lines of each are lost.",
	})
	m.keyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "codec_server_key_file_reloads_total", Help: "Key file reload attempts by outcome (ok, error).",
	}, []string{"outcome"})
	m.keyReloadFailing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "codec_server_key_file_reload_failures", Help: "Key file reloads failed in a row; 0 after a successful one.",
	})
	reg.MustRegister(m.requests, m.duration, m.payloads, m.failures, m.keyringCalls, m.dataKeys, m.auditErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.exportAtZero()
	return m
}

// failureReasons are the reason labels of codec_server_failures_total,
// as docs/OPERATIONS.md lists them (the status table in docs/SERVER.md).
var failureReasons = []string{
	"decrypt", "unknown_key", "unwrap", "malformed", "unsupported", "key_permission",
	"namespace_mismatch", "not_encrypted", "keyring_unavailable", "timeout",
	"unauthenticated", "forbidden", "namespace", "body_too_large", "too_many_payloads",
	"too_much_metadata", "too_large_to_decode", "busy", "duplicate_header", "unsupported_media_type",
	"already_encrypted", "client_certificate", "host_not_allowed", "bad_request",
	"not_found", "method_not_allowed", "canceled", "erased", "not_ready", "internal",
}

// exportAtZero creates the series an alert or a dashboard is written
// against, so that /metrics shows them from the start at zero rather than
// only after their first event: a rate() over a series that appears with
// its first failure misses that failure, and absent() cannot tell "no
// failures" from "no server".
func (m *Metrics) exportAtZero() {
	for _, route := range []string{"/encode", "/decode"} {
		m.requestCounter(route, http.StatusOK)
		m.durationObserver(route)
	}
	for _, op := range []string{"encode", "decode"} {
		m.counter(m.payloads, op)
	}
	for _, reason := range failureReasons {
		m.counter(m.failures, reason)
	}
	for _, op := range []string{"new_data_key", "unwrap_data_keys", "legacy_key"} {
		m.counter2(m.keyringCalls, op, "ok")
	}
	for _, source := range []string{"cache", "keyring"} {
		m.counter(m.dataKeys, source)
	}
}

// Registry returns the private registry, e.g. to add collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SetCertExpiry records the serving certificate's expiry; the gauge is
// registered on first use, so servers without TLS do not export it.
func (m *Metrics) SetCertExpiry(t time.Time) {
	if m == nil {
		return
	}
	_ = m.reg.Register(m.certExpiry)
	m.certExpiry.Set(float64(t.Unix()))
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// instrument returns middleware counting requests by route pattern and
// status, timing them, and counting failures by reason.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		} else if r.Method == http.MethodOptions {
			route = "preflight"
		}
		m.requestCounter(route, sw.code()).Inc()
		m.durationObserver(route).Observe(time.Since(start).Seconds())
		if reason := stateOf(r).reason; reason != "" {
			m.counter(m.failures, reason).Inc()
		}
	})
}

// InstrumentKeyring returns kr counting its calls in m, and counting per
// request how many data keys the keyring unwrapped (the rest came from the
// codec's cache). A nil m returns kr. The optional interfaces
// keyring.Checker (readiness) and keyring.LegacyKeys (payloads of the
// Temporal samples' static-key codec) are kept: the result implements
// each exactly when kr does.
func InstrumentKeyring(kr keyring.Keyring, m *Metrics) keyring.Keyring {
	if m == nil {
		return kr
	}
	ik := &instrumentedKeyring{kr: kr, m: m}
	c, isChecker := kr.(keyring.Checker)
	l, isLegacy := kr.(keyring.LegacyKeys)
	switch {
	case isChecker && isLegacy:
		return &checkingLegacyKeyring{instrumentedKeyring: ik, checker: checker{c}, legacy: legacy{ik, l}}
	case isChecker:
		return &checkingKeyring{instrumentedKeyring: ik, checker: checker{c}}
	case isLegacy:
		return &legacyKeyring{instrumentedKeyring: ik, legacy: legacy{ik, l}}
	}
	return ik
}

type instrumentedKeyring struct {
	kr keyring.Keyring
	m  *Metrics
}

// checker forwards keyring.Checker.
type checker struct{ c keyring.Checker }

func (k checker) Check(ctx context.Context) error { return k.c.Check(ctx) }

// legacy forwards keyring.LegacyKeys, counting the calls.
type legacy struct {
	ik *instrumentedKeyring
	l  keyring.LegacyKeys
}

func (k legacy) LegacyKey(ctx context.Context, keyID string) (keyring.Secret, error) {
	s, err := k.l.LegacyKey(ctx, keyID)
	k.ik.m.keyringCalls.WithLabelValues("legacy_key", outcome(err)).Inc()
	return s, err
}

type checkingKeyring struct {
	*instrumentedKeyring
	checker
}

type legacyKeyring struct {
	*instrumentedKeyring
	legacy
}

type checkingLegacyKeyring struct {
	*instrumentedKeyring
	checker
	legacy
}

func outcome(err error) string {
	if err != nil {
		_, reason, _ := Classify(err)
		return reason
	}
	return "ok"
}

// KeyGeneration forwards keyring.Rotating, so the codec still notices
// rotations through the wrapper; a keyring that does not rotate reports a
// constant generation.
func (k *instrumentedKeyring) KeyGeneration() uint64 {
	if r, ok := k.kr.(keyring.Rotating); ok {
		return r.KeyGeneration()
	}
	return 0
}

func (k *instrumentedKeyring) NewDataKey(ctx context.Context, ns string) (keyring.DataKey, error) {
	dk, err := k.kr.NewDataKey(ctx, ns)
	k.m.keyringCalls.WithLabelValues("new_data_key", outcome(err)).Inc()
	return dk, err
}

func (k *instrumentedKeyring) UnwrapDataKeys(ctx context.Context, ns string, keys []keyring.WrappedKey) ([]keyring.Secret, error) {
	out, err := k.kr.UnwrapDataKeys(ctx, ns, keys)
	k.m.counter2(k.m.keyringCalls, "unwrap_data_keys", outcome(err)).Inc()
	return out, err
}

// ExportKeyFileReloads registers the key file reload metrics
// (codec_server_key_file_reloads_total by outcome, at zero, and
// codec_server_key_file_reload_failures), so a server whose keys come from
// a file exports them from the start, also with reloading off. Servers
// without a key file do not call it and do not export them. Calling it
// again does nothing; a nil *Metrics ignores it.
func (m *Metrics) ExportKeyFileReloads() {
	if m == nil {
		return
	}
	m.keyReloadOnce.Do(func() {
		m.reg.MustRegister(m.keyReloads, m.keyReloadFailing)
		m.keyReloads.WithLabelValues("ok")
		m.keyReloads.WithLabelValues("error")
	})
}

// CountAuditErrors returns w counting its failed writes in
// codec_server_audit_write_errors_total: give it the audit log's file
// under an [AuditWriter], whose background flushes have nobody else to
// tell. A nil *Metrics returns w.
func (m *Metrics) CountAuditErrors(w io.Writer) io.Writer {
	if m == nil {
		return w
	}
	return auditErrorCounter{w: w, c: m.auditErrors}
}

type auditErrorCounter struct {
	w io.Writer
	c prometheus.Counter
}

func (a auditErrorCounter) Write(p []byte) (int, error) {
	n, err := a.w.Write(p)
	if err != nil {
		a.c.Inc()
	}
	return n, err
}

// ObserveKeyReload records one key file reload attempt; pass it as
// keyring.FileOptions.OnReload. It registers the metrics as
// [Metrics.ExportKeyFileReloads] does if that was not called. A nil
// *Metrics ignores it.
func (m *Metrics) ObserveKeyReload(err error) {
	if m == nil {
		return
	}
	m.ExportKeyFileReloads()
	if err != nil {
		m.keyReloads.WithLabelValues("error").Inc()
		m.keyReloadFailing.Inc()
		return
	}
	m.keyReloads.WithLabelValues("ok").Inc()
	m.keyReloadFailing.Set(0)
}

// ObserveDecode counts how decodes found their data keys; pass it as
// codec.Options.DecodeObserver. A nil *Metrics ignores it.
func (m *Metrics) ObserveDecode(cached, unwrapped int) {
	if m == nil {
		return
	}
	m.counter(m.dataKeys, "cache").Add(float64(cached))
	m.counter(m.dataKeys, "keyring").Add(float64(unwrapped))
}
