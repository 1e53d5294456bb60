package codecserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
)

// Error is an error whose status, reason label and message are safe to
// show the client. Err (optional) holds the detail for the log only.
type Error struct {
	Status  int    // HTTP status
	Reason  string // short label for metrics and the audit log, e.g. "bad_request"
	Message string // client-facing text; never plaintext, keys or tokens
	Err     error  // detail for the server log
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, reason, msg string, err error) *Error {
	return &Error{Status: status, Reason: reason, Message: msg, Err: err}
}

// Classify maps an error to the HTTP status, a reason label and the
// message a client may see. It is the only place that decides statuses:
//
//   - an [*Error]: its own status and message;
//   - a body over the limit: 413;
//   - codec.ErrDecrypt, codec.ErrMalformed, codec.ErrUnsupported,
//     keyring.ErrUnknownKey, keyring.ErrUnwrap: 422 (the request is well
//     formed but a payload in it cannot be opened);
//   - codec.ErrNamespace: 403 (a payload sealed for another namespace;
//     the message names both, which the payload's metadata shows anyway);
//   - codec.ErrNotEncrypted: 422 (an unsealed payload where encryption is
//     required);
//   - codec.ErrErased: 410 (a data subject's key was shredded; /decode
//     answers 200 with such payloads replaced, see ErasedHeader, so this
//     is for callers that cannot do that);
//   - keyring.ErrPermission: 403 (the key service refused this server);
//   - keyring.ErrUnavailable, a timeout: 503;
//   - anything else: 500 "internal error".
//
// The message never contains err.Error() of an internal failure.
func Classify(err error) (status int, reason, msg string) {
	var he *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.Status, he.Reason, he.Message
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, codec.ErrNamespace):
		var ne *codec.NamespaceError
		if errors.As(err, &ne) {
			return http.StatusForbidden, "namespace_mismatch", fmt.Sprintf("a payload was sealed for namespace %q and does not open in namespace %q", ne.Sealed, ne.Decoding)
		}
		return http.StatusForbidden, "namespace_mismatch", "a payload was sealed for another namespace"
	case errors.Is(err, codec.ErrErased):
		return http.StatusGone, "erased", "a payload belongs to a data subject whose key was shredded"
	case errors.Is(err, codec.ErrNotEncrypted):
		return http.StatusUnprocessableEntity, "not_encrypted", "a payload is not encrypted and this server requires encryption"
	case errors.Is(err, codec.ErrDecrypt):
		return http.StatusUnprocessableEntity, "decrypt", "a payload failed to decrypt: it was changed, or sealed under a different key"
	case errors.Is(err, codec.ErrMalformed):
		return http.StatusUnprocessableEntity, "malformed", "a payload marked as encrypted is malformed"
	case errors.Is(err, codec.ErrUnsupported):
		return http.StatusUnprocessableEntity, "unsupported", "a payload uses an unsupported encryption format"
	case errors.Is(err, keyring.ErrUnknownKey):
		return http.StatusUnprocessableEntity, "unknown_key", "a payload was sealed under a key this server does not hold"
	case errors.Is(err, keyring.ErrUnwrap):
		return http.StatusUnprocessableEntity, "unwrap", "a payload's data key cannot be unwrapped"
	case errors.Is(err, keyring.ErrPermission):
		return http.StatusForbidden, "key_permission", "the key service refused access to the key"
	case errors.Is(err, keyring.ErrUnavailable):
		return http.StatusServiceUnavailable, "keyring_unavailable", "the key service is unavailable; try again later"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout", "the request timed out; try again later"
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "canceled", "the request was canceled"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}
