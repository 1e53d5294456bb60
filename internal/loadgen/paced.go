package loadgen

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Sample is the outcome of one request of [Paced].
type Sample struct {
	Start   time.Time
	Latency time.Duration
	Status  int   // HTTP status; 0 when no answer came (Err is set)
	Err     error // transport error, or the request's own check
}

// Paced starts do at a steady rate (requests per second) until ctx ends,
// open loop: a slow answer does not slow the next request down, as it
// does not for workers and browsers that keep sending. At most maxInFlight
// run at once; a start that finds them all busy is recorded as a Sample
// with Err ErrBusy and Status 0, so a stall shows as failures rather than
// as a quietly lower rate. It waits for the requests in flight and returns
// every Sample in start order.
func Paced(ctx context.Context, rate float64, maxInFlight int, do func(ctx context.Context, seq int) Sample) []Sample {
	if rate <= 0 || maxInFlight <= 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu  sync.Mutex
		out []Sample
		wg  sync.WaitGroup
	)
	slots := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	reqCtx := context.WithoutCancel(ctx) // requests in flight finish after ctx ends
	for seq := 0; ; seq++ {
		select {
		case <-ctx.Done():
			wg.Wait()
			return sortSamples(out)
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			out = append(out, Sample{Start: time.Now(), Err: ErrBusy})
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			defer func() { <-slots }()
			s := do(reqCtx, seq)
			mu.Lock()
			out = append(out, s)
			mu.Unlock()
		}(seq)
	}
}

// ErrBusy is the Err of a [Paced] Sample that was not sent because
// maxInFlight requests were still running.
var ErrBusy = errBusy{}

type errBusy struct{}

func (errBusy) Error() string { return "loadgen: too many requests in flight; not sent" }

// sortSamples sorts s (in completion order) by start.
func sortSamples(s []Sample) []Sample {
	slices.SortStableFunc(s, func(a, b Sample) int { return a.Start.Compare(b.Start) })
	return s
}
