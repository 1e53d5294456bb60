package awskms

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// maxReasonLen bounds the part of KMS's message an error repeats.
const maxReasonLen = 300

// classify maps an error of the SDK (after its retries) to a keyring
// sentinel and a short reason: KMS's error code and message, or the
// transport failure. KMS messages name keys and ARNs, never key material.
func classify(err error) (reason string, sentinel error) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		reason = code
		if msg := ae.ErrorMessage(); msg != "" {
			reason += ": " + truncate.To(msg, maxReasonLen)
		}
		switch code {
		case "NotFoundException", "DisabledException", "KMSInvalidStateException", "InvalidKeyUsageException":
			sentinel = keyring.ErrUnknownKey
		case "InvalidCiphertextException", "IncorrectKeyException", "InvalidGrantTokenException":
			sentinel = keyring.ErrUnwrap
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken", "InvalidClientTokenId":
			sentinel = keyring.ErrPermission
		default:
			// Throttling, KMSInternalException, DependencyTimeoutException,
			// KeyUnavailableException and the like, after the SDK's
			// retries: KMS cannot serve us now.
			sentinel = keyring.ErrUnavailable
		}
		return reason, sentinel
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "KMS did not answer successfully before the deadline: " + transportReason(err), keyring.ErrUnavailable
	case errors.Is(err, context.Canceled):
		return "canceled", keyring.ErrUnavailable
	}
	// No answer from KMS (connection refused, DNS, TLS), the SDK's retry
	// quota, or credentials that could not be loaded.
	return "cannot reach KMS: " + transportReason(err), keyring.ErrUnavailable
}

// transportReason shortens an SDK error that carries no KMS answer,
// dropping the SDK's "operation error KMS: Decrypt, " framing.
func transportReason(err error) string {
	s := err.Error()
	if i := strings.Index(s, ", exceeded maximum number of attempts"); i >= 0 {
		s = s[i+2:]
	} else if _, rest, ok := strings.Cut(s, "operation error KMS: "); ok {
		if _, r, ok := strings.Cut(rest, ", "); ok {
			s = r
		}
	}
	return truncate.To(s, maxReasonLen)
}

// failure builds the error of an unsuccessful KMS call: the operation, the
// key it concerns, KMS's reason and the keyring sentinel.
func failure(operation, key string, err error) error {
	reason, sentinel := classify(err)
	return fmt.Errorf("awskms: %s with key %q: %s: %w", operation, key, reason, sentinel)
}
