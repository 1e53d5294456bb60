package codecserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/envelopecodec/envelope/internal/truncate"
)

// Identity is who made a request and what they may do.
type Identity struct {
	Subject     string // token "sub" or certificate common name; "" when unauthenticated
	Method      string // "jwt", "mtls" or "none"
	Permissions Permissions
}

// ClientCertPermissions maps identities of a verified client certificate
// to permissions, for mTLS without tokens. A key is the subject common
// name, written bare or as "cn:<name>"; a subject alternative name as
// "uri:<URI>", "dns:<name>" or "email:<address>"; or "*", which every
// verified certificate matches. A certificate gets the permissions of
// every key it matches.
type ClientCertPermissions map[string]Permissions

// ParseClientCertPermissions parses entries "<identity>=<namespace>:<role>",
// as given to --client-permission, where identity is a key of
// [ClientCertPermissions]. Entries for the same identity add up.
func ParseClientCertPermissions(entries []string) (ClientCertPermissions, error) {
	raw := make(map[string][]string)
	for _, e := range entries {
		i := strings.LastIndexByte(e, '=')
		if i <= 0 || i == len(e)-1 {
			return nil, fmt.Errorf("client permission %q: want <common name>=<namespace>:<role>", truncate.To(e, 64))
		}
		raw[e[:i]] = append(raw[e[:i]], e[i+1:])
	}
	out := make(ClientCertPermissions, len(raw))
	for cn, perms := range raw {
		p, err := ParsePermissions(perms)
		if err != nil {
			return nil, fmt.Errorf("client permission for %q: %w", cn, err)
		}
		out[cn] = p
	}
	return out, nil
}

// authenticator decides who a request comes from.
type authenticator struct {
	jwt         *JWTVerifier
	certs       ClientCertPermissions // nil when mTLS identities are off
	open        bool                  // no auth configured, on purpose
	requireCert bool                  // a verified client certificate is required
}

var errNoCredentials = unauthenticated("missing bearer token", nil)

// errNoClientCert refuses a request that came without a verified client
// certificate where one is required. It is a 403, not a 401: no HTTP
// authentication (no WWW-Authenticate challenge, no token) can stand in
// for a certificate the client presents in the TLS handshake.
var errNoClientCert = newError(http.StatusForbidden, "client_certificate",
	"a client certificate is required: connect over TLS with a certificate signed by the server's client CA (mTLS)", nil)

// verifiedCert returns the client certificate TLS verified, or nil.
func verifiedCert(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// authenticate returns the identity of r. When a client certificate is
// required, a request without a verified one fails first (403). Then: from
// its bearer token when it has an Authorization header (and a JWT verifier
// is configured), else from its verified client certificate when
// certificates map to permissions, else everyone's when auth is off.
// Errors are [*Error] values: 401 for a missing or bad token, 403 for a
// missing client certificate.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request) (*Identity, error) {
	cert := verifiedCert(r)
	if a.requireCert && cert == nil {
		return nil, errNoClientCert
	}
	if cert != nil && commonNames(cert) > 1 {
		return nil, errAmbiguousCert
	}
	if a.open {
		id := &Identity{Method: "none", Permissions: AllPermissions()}
		if cert != nil {
			id.Subject = cert.Subject.CommonName
		}
		return id, nil
	}
	if h := r.Header.Get("Authorization"); h != "" && a.jwt != nil {
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, unauthenticated("Authorization header is not \"Bearer <token>\"", nil)
		}
		return a.jwt.Verify(ctx, strings.TrimSpace(token))
	}
	if a.certs != nil && cert != nil {
		return certIdentity(cert, a.certs), nil
	}
	if a.jwt == nil && a.certs != nil {
		return nil, errNoClientCert
	}
	return nil, errNoCredentials
}

// errAmbiguousCert refuses a client certificate whose subject holds more
// than one common name: which one a mapping, a log or a proxy reads is a
// matter of taste, so none is trusted.
var errAmbiguousCert = newError(http.StatusForbidden, "client_certificate",
	"the client certificate has more than one subject common name", nil)

var oidCommonName = []int{2, 5, 4, 3}

// commonNames counts the common names in the certificate's subject.
func commonNames(cert *x509.Certificate) int {
	n := 0
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			n++
		}
	}
	return n
}

// certIdentity returns the identity of a verified certificate: the union
// of the permissions of every key it matches, and as subject the first
// match (CN, then URI, DNS, email SANs, then "*"), or the CN.
func certIdentity(cert *x509.Certificate, m ClientCertPermissions) *Identity {
	cn := cert.Subject.CommonName
	id := &Identity{Subject: cn, Method: "mtls", Permissions: Permissions{byNS: make(map[string]Role)}}
	matched := false
	add := func(key, subject string) {
		p, ok := m[key]
		if !ok {
			return
		}
		if !matched {
			id.Subject, matched = subject, true
		}
		id.Permissions.merge(p)
	}
	if cn != "" {
		if bareCNKey(cn) {
			add(cn, cn)
		}
		add("cn:"+cn, cn)
	}
	for _, u := range cert.URIs {
		add("uri:"+u.String(), "uri:"+u.String())
	}
	for _, d := range cert.DNSNames {
		add("dns:"+d, "dns:"+d)
	}
	for _, e := range cert.EmailAddresses {
		add("email:"+e, "email:"+e)
	}
	add("*", cn)
	return id
}

// bareCNKey reports whether a common name may be looked up as a bare key:
// not when it spells another kind of key ("uri:...", "dns:...",
// "email:...", "cn:..." or "*"), or a certificate whose CN reads
// "uri:spiffe://example.org/admin" would get what is mapped to that URI
// SAN. Such a CN still matches its "cn:" key.
func bareCNKey(cn string) bool {
	if cn == "*" {
		return false
	}
	for _, p := range [...]string{"cn:", "uri:", "dns:", "email:"} {
		if len(cn) >= len(p) && strings.EqualFold(cn[:len(p)], p) {
			return false
		}
	}
	return true
}

// writeAuthChallenge adds the WWW-Authenticate challenge of RFC 6750 to a 401.
func writeAuthChallenge(w http.ResponseWriter, err error) {
	var he *Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		return
	}
	v := wwwAuthenticateRealmValue
	if he != errNoCredentials {
		v += `, error="invalid_token", error_description="` + strings.ReplaceAll(he.Message, `"`, `'`) + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
}
