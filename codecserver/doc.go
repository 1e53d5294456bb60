// Package codecserver serves the envelope codec over HTTP for the Temporal
// Web UI, the temporal CLI and remote SDK clients
// (converter.NewRemotePayloadCodec). cmd/codec-server wires it to flags;
// docs/SERVER.md documents the HTTP API, status codes, metrics and the
// audit log.
//
// # Routes
//
// [New] returns a chi router with POST /encode, /decode and their
// namespace forms /{namespace}/encode|decode, GET /healthz, /readyz and
// /metrics. Bodies are commonpb.Payloads in protojson, as the SDK's
// NewPayloadCodecHTTPHandler uses; answers keep order and count.
//
// # Codec chains
//
// [Config.Codecs] takes any converter.PayloadCodec values, applied as the
// SDK's NewPayloadCodecHTTPHandler(codecs...) applies them: /decode runs
// the first first, /encode the last first. Codecs implementing
// converter.PayloadCodecWithSerializationContext (the envelope codec) get
// the request's namespace; [Config.Codec] is the one-codec shorthand.
//
// # Namespaces
//
// [ResolveNamespace] is the one rule: the path wins, else X-Namespace,
// else the default namespace (the CLI sends an empty header). The resolved
// namespace is checked against the caller's [Permissions], chooses the key
// (through WithSerializationContext) and goes into the audit line. An empty
// path segment (//decode, the CLI's {namespace} placeholder without -n)
// names no namespace. A payload sealed for another namespace
// (codec.ErrNamespace) is 403 namespace_mismatch, and the audit line names
// both namespaces (namespace, sealed_namespace).
//
// # Authentication
//
// A [JWTVerifier] checks bearer tokens against a JWKS (URL, OIDC discovery
// or file) with an allow-list of asymmetric algorithms; client certificates
// verified by TLS can be mapped to permissions with
// [ClientCertPermissions] (by subject CN or by URI, DNS or email SAN).
// Permissions use Temporal's format, "<namespace>:<read|write|worker|admin>"
// ([ParsePermissions]); in tokens they are read as Temporal's default claim
// mapper reads them: odd entries are ignored, roles are case-insensitive,
// an optional regular expression ([JWTConfig.PermissionsRegex]) parses
// other shapes. Verified tokens are cached by their hash within their
// validity and key set.
//
// [TLSConfig] verifies a client certificate if one is given but does not
// require one, so that health probes reach /healthz and /readyz;
// [Config.RequireClientCert] makes /encode and /decode refuse requests
// without one (403).
//
// # Memory
//
// Bodies are read into buffers that grow as bytes arrive (Content-Length
// is not trusted); payloads, external payload details and metadata entries
// are counted before parsing (413 beyond the limits). Everything a request
// holds — body buffer, the objects parsing makes (codec.ObjectCost each),
// what /decode decompresses and the objects that unmarshals into, the
// answer — is reserved before it is allocated: all requests together hold
// at most [Config.MaxInFlightBodyBytes] (503 with Retry-After beyond), the
// requests of one identity (token subject, certificate identity, or client
// address) at most 3/4 of it, and a request that alone needs more gets 413.
//
// # Errors
//
// [Classify] is the single mapping from errors to statuses. Every error
// answer is JSON {"error": "..."} with a short message that never holds
// plaintext, keys, tokens or an internal error's text; the detail is logged
// with the request's X-Request-Id.
//
// # Middleware
//
// Request IDs ([RequestID]), CORS ([CORS], github.com/rs/cors with exact
// origins only), body limits, Prometheus metrics on a private registry
// ([NewMetrics]) and the audit log (batched by an [AuditWriter]) are
// applied by New; each lives in its own file.
package codecserver
