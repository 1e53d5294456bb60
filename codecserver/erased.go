package codecserver

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	commonpb "go.temporal.io/api/common/v1"
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

// erasableCodec is implemented by codecs that can tell erased payloads
// apart (codec.Codec.DecodeErasable).
type erasableCodec interface {
	DecodeErasable(ctx context.Context, payloads []*commonpb.Payload) ([]*commonpb.Payload, []int, error)
}

// decodeShowingErased decodes like chain.decode for a person looking at a
// history: payloads an erasable codec reports erased are replaced and
// counted in ErasedHeader instead of failing the request. The replacement
// is json/plain, so the codecs after it pass it through.
func (s *Server) decodeShowingErased(ctx context.Context, w http.ResponseWriter, r *http.Request, c chain, in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	payloads := in
	erased := 0
	for _, pc := range c {
		var err error
		var gone []int
		switch cc := pc.(type) {
		case erasableCodec:
			payloads, gone, err = cc.DecodeErasable(ctx, payloads)
		case contextCodec:
			payloads, err = cc.DecodeContext(ctx, payloads)
		default:
			payloads, err = pc.Decode(payloads)
		}
		if err != nil {
			return nil, err
		}
		for _, i := range gone {
			payloads[i] = erasedPayload()
		}
		erased += len(gone)
	}
	if erased == 0 {
		return payloads, nil
	}
	w.Header().Set(ErasedHeader, strconv.Itoa(erased))
	st := stateOf(r)
	attrs := []slog.Attr{
		slog.String("request_id", st.id),
		slog.String("subject", st.subject),
		slog.String("namespace", st.namespace),
		slog.Int("erased", erased),
		slog.Int("count", len(in)),
	}
	s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "erased payloads", attrs...)
	if s.cfg.AuditLog != nil {
		s.cfg.AuditLog.LogAttrs(ctx, slog.LevelInfo, "erased payloads", attrs...)
	}
	return payloads, nil
}
