// Package reload runs the "check the file again every interval" loops of
// the key file, the TLS certificate and the TLS client CA the same way.
package reload

import (
	"context"
	"time"
)

// Every calls check every interval until ctx is done, with the tick's
// time. It does not call check at once: the caller has loaded the file.
func Every(ctx context.Context, interval time.Duration, check func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			check(now)
		}
	}
}
