package codecserver

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/codec"
)

// Erased payloads: a decode whose payloads include some sealed for a data
// subject whose key was shredded (codec.ErrErased) still answers 200, so
// that the Web UI and the CLI show the rest of the history. Each erased
// payload is replaced by a json/plain payload holding the string
// ErasedText, with metadata "encryption-erased: true", and the answer
// carries ErasedHeader with the number of erased payloads. The audit log
// gets a line "erased payloads" with the request ID and that number. See
// docs/ERASURE.md.
const (
	// ErasedHeader counts the payloads of a decode answer that were
	// replaced because their data subject was erased.
	ErasedHeader = "X-Erased-Payloads"
	// ErasedText is the JSON string an erased payload is replaced with.
	ErasedText = "[erased: data subject key shredded]"
	// ErasedMetadata is the metadata key set to "true" on a replacement.
	ErasedMetadata = "encryption-erased"
)

// erasedPayload is what an erased payload is shown as.
func erasedPayload() *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), ErasedMetadata: []byte("true")},
		Data:     []byte(strconv.Quote(ErasedText)),
	}
}

// decode decodes for a person looking at a history: erased payloads are
// replaced and counted in ErasedHeader instead of failing the request.
func (s *Server) decode(ctx context.Context, w http.ResponseWriter, r *http.Request, c *codec.Codec, in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, erased, err := c.DecodeErasable(ctx, in)
	if err != nil || len(erased) == 0 {
		return out, err
	}
	for _, i := range erased {
		out[i] = erasedPayload()
	}
	w.Header().Set(ErasedHeader, strconv.Itoa(len(erased)))
	st := stateOf(r)
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("subject", st.subject),
		slog.String("namespace", st.namespace),
		slog.Int("erased", len(erased)),
		slog.Int("count", len(in)),
	}
	s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "erased payloads", attrs...)
	if s.cfg.AuditLog != nil {
		s.cfg.AuditLog.LogAttrs(ctx, slog.LevelInfo, "erased payloads", attrs...)
	}
	return out, nil
}
