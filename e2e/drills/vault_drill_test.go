//go:build drill

package drills

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDrillVaultStopsAnswering: the Vault the codec server talks to
// accepts connections and never answers (DRILL_FAULT, default 30s), then
// answers again. Encodes of namespaces whose data key the server holds
// and decodes of payloads whose keys it has cached never wait for Vault:
// all succeed, none takes as long as one Vault timeout (5s, where an
// encode blocked behind Vault would be); /readyz goes 503 and back to 200;
// nothing sealed is lost.
func TestDrillVaultStopsAnswering(t *testing.T) {
	d := startDrill(t, drillOptions{})
	r := d.runLoad("Vault stops answering", d.proxy.Hold, func() time.Time {
		time.Sleep(d.s.fault)
		d.proxy.Release()
		return time.Now()
	})
	bad := d.checkNoDataLoss(0)
	d.report(r, bad)
	d.assertCachedUnaffected(r)
	if !r.readyWent503 || !r.ready200 {
		t.Errorf("/readyz: went 503 during the fault: %v, 200 at the end: %v", r.readyWent503, r.ready200)
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// TestDrillActiveVaultKilled: the active node of the three is SIGKILLed;
// the codec server talks to a standby, which forwards to the new active
// node once one is elected. Cached encodes and warm decodes all succeed.
func TestDrillActiveVaultKilled(t *testing.T) {
	d := startDrill(t, drillOptions{node: 1})
	active := d.vault.Active(t, time.Second)
	if active == d.node {
		t.Fatalf("node %d behind the proxy is active; the drill needs a standby there", active)
	}
	r := d.runLoad("active Vault node SIGKILLed", func() { d.vault.Kill(active) }, func() time.Time {
		d.vault.Active(t, d.s.recoverMax)
		return time.Now()
	})
	bad := d.checkNoDataLoss(d.node)
	d.report(r, bad)
	d.assertCachedUnaffected(r)
	if !r.ready200 {
		t.Error("/readyz is not 200 after the drill")
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// TestDrillVaultSealed: the cluster is sealed (the active node through
// sys/seal, the others restarted, so all answer "sealed") for DRILL_FAULT,
// then unsealed. /readyz goes 503 and back; cached encodes and warm
// decodes keep working; nothing sealed is lost.
func TestDrillVaultSealed(t *testing.T) {
	d := startDrill(t, drillOptions{node: 1})
	r := d.runLoad("Vault sealed, then unsealed", func() { d.vault.SealAll(t) }, func() time.Time {
		time.Sleep(d.s.fault)
		d.vault.UnsealAll(t, d.s.recoverMax)
		return time.Now()
	})
	bad := d.checkNoDataLoss(d.node)
	d.report(r, bad)
	d.assertCachedUnaffected(r)
	if !r.readyWent503 || !r.ready200 {
		t.Errorf("/readyz: went 503 during the fault: %v, 200 at the end: %v", r.readyWent503, r.ready200)
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// assertCachedUnaffected: every encode of a namespace whose data key the
// server holds and every decode whose keys it cached succeeded, and none
// waited as long as one Vault call may (the 5s timeout): they never
// waited for Vault. After recovery every request of every kind succeeded.
func (d *drill) assertCachedUnaffected(r *run) {
	t := d.t
	const vaultTimeout = 5 * time.Second
	for _, kind := range []string{encodeCached, decodeWarm} {
		all := r.samples[kind]
		if f := failures(all); len(f) > 0 {
			t.Errorf("%s: %s of %d failed; want none (they need no Vault call)", kind, fmtFailures(f), len(all))
		}
		if m := maxLatency(r.window(kind, r.faultAt, r.repairAt)); m >= vaultTimeout {
			t.Errorf("%s: slowest during the fault took %s, as long as a Vault timeout: it waited for Vault", kind, m)
		}
	}
	for _, st := range streams {
		if f := failures(r.window(st.kind, r.recoveredAt, r.end)); len(f) > 0 {
			t.Errorf("%s: %s failed after recovery; want none", st.kind, fmtFailures(f))
		}
	}
}

// TestDrillTokenRevokedAndExpiring: the codec server logs in with AppRole
// and gets tokens of a 5s TTL and a 15s max TTL, so under the load its
// token runs out every 15s; at the fault every token AppRole issued is
// revoked (sys/leases/revoke-prefix/auth/approle/login). The server logs
// in again by itself: no request fails, nothing sealed is lost.
func TestDrillTokenRevokedAndExpiring(t *testing.T) {
	d := startDrill(t, drillOptions{tokenTTL: "5s", tokenMax: "15s"})
	r := d.runLoad("token revoked; TTL runs out", func() {
		d.vault.Nodes[0].Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
	}, func() time.Time {
		time.Sleep(d.s.fault)
		return time.Now()
	})
	bad := d.checkNoDataLoss(0)
	d.report(r, bad)
	d.assertCachedUnaffected(r)
	for _, st := range streams {
		if f := failures(r.samples[st.kind]); len(f) > 0 {
			t.Errorf("%s: %s failed; want none: the server logs in again", st.kind, fmtFailures(f))
		}
	}
	logins := strings.Count(d.cs.Output(), "logged in to vault")
	relogins := strings.Count(d.cs.Output(), "vault token is invalid; logging in again")
	t.Logf("the codec server logged in %d times, %d of them after a call found its token invalid", logins, relogins)
	if want := 1 + int((d.s.before+d.s.fault+d.s.after)/(15*time.Second)); logins < want {
		t.Errorf("the codec server logged in %d times, want at least %d (a token lives at most 15s)", logins, want)
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// TestDrillVaultNodeBehindTheAddressKilled: the codec server knows Vault
// by one address, a load balancer over the three nodes that sends new
// connections to a node answering GET /v1/sys/health?standbyok=true with
// 200 (active or unsealed standby), checked every second, as
// docs/OPERATIONS.md tells operators to set one up. The node behind it
// (the active one, the worst case) is SIGKILLed; the balancer moves to
// another node and the server goes on through it.
func TestDrillVaultNodeBehindTheAddressKilled(t *testing.T) {
	d := startDrill(t, drillOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	moved := make(chan time.Time, 1)
	go d.balance(ctx, moved)
	r := d.runLoad("node behind the Vault address SIGKILLed", func() { d.killedAt = time.Now(); d.vault.Kill(d.node) }, func() time.Time {
		select {
		case at := <-moved:
			d.vault.Active(t, d.s.recoverMax)
			t.Logf("the load balancer moved %.1fs after the kill; a node is active %.1fs after it", at.Sub(d.killedAt).Seconds(), time.Since(d.killedAt).Seconds())
			return time.Now()
		case <-time.After(d.s.recoverMax):
			t.Fatalf("the load balancer did not move off the killed node in %s", d.s.recoverMax)
			return time.Time{}
		}
	})
	bad := d.checkNoDataLoss((d.node + 1) % len(d.vault.Nodes))
	d.report(r, bad)
	d.assertCachedUnaffected(r)
	if !r.ready200 {
		t.Error("/readyz is not 200 after the drill")
	}
	if bad != 0 {
		t.Errorf("%d payloads undecodable after the drill", bad)
	}
}

// balance is the load balancer of the drill: every second it checks the
// node behind the proxy with sys/health?standbyok=true and, when that is
// not 200, points the proxy at the first node that answers 200, sending
// the time it moved to moved.
func (d *drill) balance(ctx context.Context, moved chan<- time.Time) {
	client := &http.Client{Timeout: time.Second}
	healthy := func(i int) bool {
		resp, err := client.Get(d.vault.Nodes[i].Addr + "/v1/sys/health?standbyok=true")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	current := d.node
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if healthy(current) {
			continue
		}
		for i := range d.vault.Nodes {
			if i != current && healthy(i) {
				d.t.Logf("load balancer: node %d failed its health check; new connections go to node %d", current, i)
				current = i
				d.proxy.SetTarget(strings.TrimPrefix(d.vault.Nodes[i].Addr, "http://"))
				select {
				case moved <- time.Now():
				default:
				}
				break
			}
		}
	}
}
