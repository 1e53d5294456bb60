package vault

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

const (
	maxResponseBody = 8 << 20
	maxReasonLen    = 300
	maxRetryWait    = 5 * time.Second
)

// reply is one answer from Vault.
type reply struct {
	status int
	errors []string        // Vault's reasons, from {"errors": [...]}
	data   json.RawMessage // the "data" object
}

// op describes a call for error messages and logs: the operation and the
// transit key it concerns ("" when none).
type op struct {
	name string // "datakey", "decrypt", "read key", "token lookup", "login", "health"
	key  string
}

func (o op) String() string {
	if o.key == "" {
		return o.name
	}
	return fmt.Sprintf("%s with key %q", o.name, o.key)
}

// attempt makes one HTTP request to Vault with the per-call timeout and
// reads the whole answer before the timeout's context is released. err is
// set only when no HTTP answer arrived.
func (k *Keyring) attempt(ctx context.Context, method, path string, body []byte) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	var resp *api.Response
	var err error
	switch method {
	case http.MethodGet:
		resp, err = k.client.Logical().ReadRawWithContext(ctx, path)
	case http.MethodDelete:
		resp, err = k.client.Logical().DeleteRawWithContext(ctx, path)
	default:
		resp, err = k.client.Logical().WriteRawWithContext(ctx, path, body)
	}
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		return reply{}, err
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode}
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if rerr != nil {
		return reply{}, rerr
	}
	if len(raw) > maxResponseBody {
		return reply{}, fmt.Errorf("response is larger than %d bytes", maxResponseBody)
	}
	var parsed struct {
		Errors []string        `json:"errors"`
		Data   json.RawMessage `json:"data"`
	}
	if len(raw) > 0 {
		if jerr := json.Unmarshal(raw, &parsed); jerr != nil {
			if r.status < 300 {
				return reply{}, fmt.Errorf("malformed JSON response (status %d)", r.status)
			}
			parsed.Errors = []string{strings.TrimSpace(string(raw))}
		}
	}
	r.errors, r.data = parsed.Errors, parsed.Data
	return r, nil
}

// Call is the keyring's Vault call path for other packages (the data
// subject store, keyring/subject): one request to path (relative to /v1/,
// e.g. "transit/keys/subject-alice") with method GET, PUT, POST or DELETE
// and body (JSON-encoded; nil for none), under the keyring's token and
// settings: the per-call timeout (Config.Timeout), bounded retries with
// backoff for answers that may succeed later (Config.MaxRetries; never
// for other 4xx), one re-login on an invalid token when the keyring logs in
// itself (AppRole, Kubernetes). It returns the HTTP status and the answer's
// "data" object. Failures wrap the keyring sentinels (keyring.ErrUnknownKey
// for 404 or a missing transit key, keyring.ErrPermission for 401/403,
// keyring.ErrUnavailable for transport errors, 429, 412 and 5xx) and name
// operation and key, never the token or key material.
func (k *Keyring) Call(ctx context.Context, operation, key, method, path string, body any) (status int, data json.RawMessage, err error) {
	r, err := k.call(ctx, op{name: operation, key: key}, method, path, body, k.maxRetries, false)
	return r.status, r.data, err
}

// call makes a request with bounded retries and backoff for answers that
// may succeed later (network errors, timeouts, 5xx, sealed, 429, 412) and
// none for answers that will not (other 4xx). A 403 for an invalid token
// triggers one re-login when the keyring logs in itself (AppRole,
// Kubernetes). Batch decrypt answers 400 with per-item results when some
// items fail; allowBatch400 returns those as a success.
func (k *Keyring) call(ctx context.Context, o op, method, path string, body any, retries int, allowBatch400 bool) (reply, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return reply{}, fmt.Errorf("vault: %s: %w", o, err)
		}
	}
	relogged := false
	for attempt := 0; ; attempt++ {
		gen := k.tokenGen.Load()
		r, err := k.attempt(ctx, method, path, payload)
		if err == nil && r.status >= 200 && r.status < 300 {
			return r, nil
		}
		if err == nil && allowBatch400 && r.status == http.StatusBadRequest && len(r.errors) == 0 && len(r.data) > 0 {
			return r, nil
		}
		f := classify(r.status, r.errors, err)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			f.reason = fmt.Sprintf("no answer from vault within %s", k.timeout)
		}
		if ctx.Err() != nil {
			return r, k.failure(o, f, ctx.Err())
		}
		if f.invalidToken && k.auth != nil && !relogged {
			relogged = true
			if lerr := k.relogin(ctx, gen); lerr == nil {
				continue
			} else {
				k.logger.Warn("vault re-login failed", "err", lerr)
			}
		}
		if !f.retry || attempt >= retries {
			return r, k.failure(o, f, nil)
		}
		wait := backoff(k.retryWait, attempt)
		k.logger.Warn("vault call failed; retrying", "op", o.name, "key", o.key,
			"attempt", attempt+1, "retry_in", wait, "err", f.reason)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, k.failure(o, f, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff returns the wait before retry attempt+1: base·2^attempt with
// jitter in [half, full], at most maxRetryWait.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 0; i < attempt && d < maxRetryWait; i++ {
		d *= 2
	}
	d = min(d, maxRetryWait)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// failure is a classified unsuccessful call.
type failure struct {
	sentinel     error // a keyring sentinel, or nil when none fits
	retry        bool
	invalidToken bool
	reason       string // status and Vault's reason, or the transport error
}

// classify maps Vault's answer (or the transport error) to a keyring
// sentinel and decides whether to retry.
func classify(status int, reasons []string, err error) failure {
	if err != nil && status == 0 {
		var re *api.ResponseError
		if errors.As(err, &re) {
			status, reasons = re.StatusCode, re.Errors
		} else {
			// A certificate Vault's CA did not sign will not change by
			// retrying.
			var cv *tls.CertificateVerificationError
			retry := !errors.As(err, &cv)
			return failure{sentinel: keyring.ErrUnavailable, retry: retry, reason: "cannot reach vault: " + transportReason(err)}
		}
	}
	reason := reasonText(reasons)
	f := failure{reason: fmt.Sprintf("vault answered %d", status)}
	if reason != "" {
		f.reason += ": " + reason
	}
	switch {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		f.sentinel = keyring.ErrPermission
		f.invalidToken = strings.Contains(reason, "invalid token")
	case status == http.StatusNotFound:
		f.sentinel = keyring.ErrUnknownKey
	case status == http.StatusBadRequest && strings.Contains(reason, "key not found"):
		// transit: "encryption key not found"
		f.sentinel = keyring.ErrUnknownKey
	case status == http.StatusTooManyRequests || status == http.StatusPreconditionFailed || status >= 500:
		// 503 is also what a sealed Vault answers.
		f.sentinel, f.retry = keyring.ErrUnavailable, true
	}
	return f
}

// transportReason shortens a transport error, dropping the request URL the
// http package puts in front (it names only the Vault address and path).
func transportReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return truncate.To(err.Error(), maxReasonLen)
}

func reasonText(reasons []string) string {
	var parts []string
	for _, r := range reasons {
		// Vault wraps multierrors as "2 errors occurred:\n\t* a\n\t* b\n\n".
		for _, line := range strings.Split(r, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
			if line == "" || strings.HasSuffix(line, "errors occurred:") || strings.HasSuffix(line, "error occurred:") {
				continue
			}
			parts = append(parts, line)
		}
	}
	return truncate.To(strings.Join(parts, "; "), maxReasonLen)
}

// failure builds the error for an unsuccessful call. It names the operation,
// the key and Vault's reason; it never contains the token or key material.
func (k *Keyring) failure(o op, f failure, ctxErr error) error {
	if ctxErr != nil {
		return fmt.Errorf("vault: %s: %s (%w): %w", o, f.reason, ctxErr, keyring.ErrUnavailable)
	}
	if f.sentinel == nil {
		return fmt.Errorf("vault: %s: %s", o, f.reason)
	}
	return fmt.Errorf("vault: %s: %s: %w", o, f.reason, f.sentinel)
}
