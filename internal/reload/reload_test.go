package reload_test

import (
	"context"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/reload"
)

func TestEveryChecksUntilCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	checks := make(chan time.Time, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		reload.Every(ctx, time.Millisecond, func(now time.Time) {
			select {
			case checks <- now:
			default:
			}
		})
	}()
	first, second := <-checks, <-checks
	if !second.After(first) {
		t.Errorf("ticks %v then %v", first, second)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after ctx was canceled")
	}
}
