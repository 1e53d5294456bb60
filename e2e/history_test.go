package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestHistoryHoldsNoPlaintext runs the example worker and starter with a
// key file and reads the history back with the temporal CLI without a
// codec: Temporal stored only binary/encrypted payloads.
func TestHistoryHoldsNoPlaintext(t *testing.T) {
	t.Parallel()
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	e := env{temporal: tc, keyArgs: []string{"--keys-file", newKeyFile(t)}}
	s := newSecrets(t)
	startWorker(t, e, "tq-history")
	r := runStarter(t, e, "tq-history", s)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	show := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if show.Err != nil {
		t.Fatal(show)
	}
	// Workflow input, activity input and result, signal, workflow result.
	assertNoPlaintext(t, "workflow show", show.Stdout, s, 5)

	desc := tc.CLI(ctx, "workflow", "describe", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if desc.Err != nil {
		t.Fatal(desc)
	}
	// The memo's two fields.
	assertNoPlaintext(t, "workflow describe", desc.Stdout, s, 2)
}
