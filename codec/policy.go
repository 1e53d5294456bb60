package codec

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
)

// NamespaceError is the error of a payload sealed for one namespace and
// decoded in another. It matches [ErrNamespace] with errors.Is. Both names
// come from the payload's metadata and the request, never from its
// plaintext.
type NamespaceError struct {
	// Sealed is the namespace the payload was sealed for.
	Sealed string
	// Decoding is the namespace that tried to open it.
	Decoding string
}

func (e *NamespaceError) Error() string {
	return fmt.Sprintf("%v: sealed for namespace %q, decoding in namespace %q", ErrNamespace, e.Sealed, e.Decoding)
}

// Is reports whether target is ErrNamespace.
func (e *NamespaceError) Is(target error) bool { return target == ErrNamespace }

// checkPolicy validates and copies the decode-policy options.
func checkPolicy(opts *Options) error {
	if len(opts.NamespaceAliases) == 0 {
		opts.NamespaceAliases = nil
		return nil
	}
	aliases := make(map[string][]string, len(opts.NamespaceAliases))
	for ns, from := range opts.NamespaceAliases {
		if ns == "" || len(ns) > envelope.MaxNamespaceLen {
			return errors.New("codec: NamespaceAliases: a namespace is empty or longer than 255 bytes")
		}
		for _, f := range from {
			if f == "" || len(f) > envelope.MaxNamespaceLen {
				return fmt.Errorf("codec: NamespaceAliases[%q]: a namespace is empty or longer than 255 bytes", ns)
			}
			if f == ns {
				return fmt.Errorf("codec: NamespaceAliases[%q] names the namespace itself", ns)
			}
		}
		aliases[ns] = append([]string(nil), from...)
	}
	opts.NamespaceAliases = aliases
	return nil
}

// admit checks, before any keyring call, that c's namespace may open a
// payload with header h: a v2 payload sealed for c's namespace or for one
// of its aliases; a v1 payload unless Options.RefuseV1.
func (c *Codec) admit(h envelope.Header) error {
	if h.Version != 2 {
		if c.core.opts.RefuseV1 {
			return fmt.Errorf("%w: %s payloads are not bound to a namespace and this codec refuses them (RefuseV1)", ErrUnsupported, envelope.FormatV1)
		}
		return nil
	}
	if string(h.Namespace) == c.namespace {
		return nil
	}
	for _, a := range c.core.opts.NamespaceAliases[c.namespace] {
		if string(h.Namespace) == a {
			return nil
		}
	}
	return &NamespaceError{Sealed: string(h.Namespace), Decoding: c.namespace}
}

// keyringNamespace is the namespace the keyring unwraps a payload's data
// key for, and part of what identifies it in the decode cache: the
// namespace a v2 payload was sealed for (admit has checked that c may open
// it: its own, or an alias, whose keys a per-namespace keyring holds under
// the old name), or c's namespace for v1.
func (c *Codec) keyringNamespace(h envelope.Header) string {
	if h.Version == 2 && string(h.Namespace) != c.namespace {
		return string(h.Namespace)
	}
	return c.namespace
}

// unwrapByNamespace unwraps the missing keys with one keyring call per
// namespace they are unwrapped for (one, unless aliases are in use).
func (c *Codec) unwrapByNamespace(ctx context.Context, missing []*pendingKey, keys []*openKey, now time.Time) error {
	same := true
	for _, m := range missing {
		same = same && m.namespace == c.namespace
	}
	if same {
		return c.unwrap(ctx, missing, keys, now)
	}
	groups := make(map[string][]*pendingKey)
	var order []string
	for _, m := range missing {
		if _, ok := groups[m.namespace]; !ok {
			order = append(order, m.namespace)
		}
		groups[m.namespace] = append(groups[m.namespace], m)
	}
	for _, ns := range order {
		if err := c.ForNamespace(ns).unwrap(ctx, groups[ns], keys, now); err != nil {
			return err
		}
	}
	return nil
}

// idInError is how many bytes of a payload's key ID an error message
// shows: a static key pasted where the ID belongs (hex or base64 of 32
// bytes) must never reach a log whole, and 16 bytes are enough to tell the
// samples' IDs apart.
const idInError = 16
