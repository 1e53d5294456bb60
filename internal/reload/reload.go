// Package reload runs the "check the file again every interval" loops of
// the key file, the TLS certificate and the TLS client CA the same way.
//
// The codec server's JWKS (file or URL) is not reloaded here: it has no
// background loop. codecserver.JWTVerifier refreshes its keys on demand,
// inside the request that finds them older than RefreshInterval or that
// names an unknown kid (at most once per MinRefreshInterval), timed by
// JWTConfig.Now. A ticker would add a goroutine the verifier has no Close
// to stop, and it would still need the on-demand path for unknown kids.
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
