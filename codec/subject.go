package codec

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// sealKeyID identifies a cached data key for sealing: per namespace and
// data subject ("" for the namespace's own key).
type sealKeyID struct{ namespace, subject string }

// Subject returns the data subject whose key this Codec seals under, or ""
// for the namespace's key.
func (c *Codec) Subject() string { return c.subject }

// ForSubject returns a Codec that shares c's keyring and caches and seals
// under data subject's key (keyring.SubjectKeyring); "" returns a Codec
// that seals under the namespace's key. Decoding does not depend on it:
// a sealed payload names its key.
func (c *Codec) ForSubject(subject string) *Codec {
	if subject == c.subject {
		return c
	}
	return &Codec{core: c.core, namespace: c.namespace, subject: subject}
}

// withSubjectOf applies Options.Subject to a serialization context.
func (c *Codec) withSubjectOf(sc converter.SerializationContext) *Codec {
	if c.core.opts.Subject == nil {
		return c
	}
	return c.ForSubject(c.core.opts.Subject(sc))
}

// newDataKey asks the keyring for a data key for namespace, under
// subject's key when subject is set.
func (c *core) newDataKey(ctx context.Context, namespace, subject string) (keyring.DataKey, error) {
	if subject == "" {
		dk, err := c.kr.NewDataKey(ctx, namespace)
		if err != nil {
			return dk, fmt.Errorf("new data key for namespace %q: %w", namespace, err)
		}
		return dk, nil
	}
	// Subject IDs may be personal data (an e-mail address): validate
	// before anything, and name them in errors only where the store does.
	if err := keyring.ValidSubject(subject); err != nil {
		return keyring.DataKey{}, err
	}
	sk, ok := c.kr.(keyring.SubjectKeyring)
	if !ok {
		return keyring.DataKey{}, errors.New("data subject: the keyring holds no data subject keys (want a keyring.SubjectKeyring, e.g. keyring/subject)")
	}
	dk, err := sk.NewSubjectDataKey(ctx, namespace, subject)
	if err != nil {
		return dk, fmt.Errorf("new data key for namespace %q, data subject: %w", namespace, err)
	}
	if !keyring.IsSubjectKeyID(dk.KeyID) {
		return keyring.DataKey{}, fmt.Errorf("data subject: keyring returned key ID %q, want one starting with %q", truncate.To(dk.KeyID, idInError), keyring.SubjectKeyIDPrefix)
	}
	return dk, nil
}

// maxAge is how long a data key wrapped under keyID may be cached: at most
// SubjectKeyMaxAge for a data subject's key, so a shred reaches every cache
// within that time.
func (c *core) maxAge(keyID string, d time.Duration) time.Duration {
	if keyring.IsSubjectKeyID(keyID) {
		return min(d, c.opts.SubjectKeyMaxAge)
	}
	return d
}

// DecodeErasable is DecodeContext for readers that show a history to a
// person (the codec server): payloads of erased data subjects
// (ErrErased) do not fail the whole call. It returns the decoded payloads
// with nil at the indexes of erased payloads, and those indexes in
// increasing order. Any other failure fails the call as in DecodeContext.
// When no payload is erased it costs what DecodeContext costs; otherwise
// the payloads are decoded one by one: one keyring call per data key not
// cached, and one per erased data subject key ID. Workers use Decode: they must get the error, never stand-in
// data.
func (c *Codec) DecodeErasable(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, []int, error) {
	out, err := c.DecodeContext(ctx, payloads)
	if err == nil || !errors.Is(err, ErrErased) {
		return out, nil, err
	}
	out = make([]*commonpb.Payload, len(payloads))
	var erased []int
	// Payloads under a data subject key already found erased are erased
	// too: no keyring call for them. Erasure is a property of the data
	// subject key a key ID names, so any other data key under the same
	// key ID (same format and namespace, which decoding checks first) is
	// erased as well. Other keys are known by their wrapped data key.
	gone := map[string]bool{}
	goneKey := func(h envelope.Header) string {
		k := string(rune(h.Version)) + "\x00" + string(h.Namespace) + "\x00" + string(h.KeyID)
		if !keyring.IsSubjectKeyID(string(h.KeyID)) {
			k += "\x00" + string(h.Wrapped)
		}
		return k
	}
	for i := range payloads {
		h, herr := envelope.ParseHeader(payloads[i])
		if herr == nil && gone[goneKey(h)] {
			erased = append(erased, i)
			continue
		}
		one, err := c.DecodeContext(ctx, payloads[i:i+1])
		switch {
		case errors.Is(err, ErrErased):
			erased = append(erased, i)
			if herr == nil {
				gone[goneKey(h)] = true
			}
		case err != nil:
			return nil, nil, fmt.Errorf("codec: payload %d of %d: %w", i, len(payloads), err)
		default:
			out[i] = one[0]
		}
	}
	return out, erased, nil
}
