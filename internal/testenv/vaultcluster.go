package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// VaultCluster is a real Vault cluster: Nodes servers (not -dev) with
// integrated storage (Raft) on loopback ports, initialised with one
// unseal key share, unsealed, with transit enabled at "transit". Each
// node is a *Vault, so Request, Write, CreateKey, EnableAppRole ... work
// on any node (standbys forward to the active node).
type VaultCluster struct {
	Nodes     []*Vault
	Token     string // the root token
	UnsealKey string // the single unseal key share (base64)

	bin   string
	dir   string
	ports [][2]int // API and cluster port of each node
}

// StartVaultCluster starts a cluster of n nodes of bin/vault (at least 1;
// 3 gives a quorum that survives one loss), initialises and unseals it,
// enables transit and stops every node when the test ends. Node 0 is
// active at the start; the others join it (sys/storage/raft/join).
func StartVaultCluster(t testing.TB, n int) *VaultCluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testenv: a Vault cluster needs at least one node, got %d", n)
	}
	c := &VaultCluster{bin: Binary(t, "vault"), dir: t.TempDir(), Nodes: make([]*Vault, n)}
	for range n {
		c.ports = append(c.ports, [2]int{FreePort(t), FreePort(t)})
	}
	for i := range n {
		if err := c.startNode(t, i); err != nil {
			t.Fatalf("testenv: vault cluster: %v", err)
		}
	}
	// Initialise through node 0 with one key share, then unseal it; the
	// others join it as they are unsealed.
	status, out, err := c.Nodes[0].Request(http.MethodPut, "sys/init", "", map[string]any{"secret_shares": 1, "secret_threshold": 1})
	if err != nil || status != http.StatusOK {
		t.Fatalf("testenv: vault cluster: init: %d %v %v", status, err, out["errors"])
	}
	keys, _ := out["keys_base64"].([]any)
	c.Token, _ = out["root_token"].(string)
	if len(keys) != 1 || c.Token == "" {
		t.Fatalf("testenv: vault cluster: init answered no key or root token")
	}
	c.UnsealKey, _ = keys[0].(string)
	for _, v := range c.Nodes {
		v.Token = c.Token
	}
	c.Unseal(t, 0)
	if err := c.Nodes[0].waitHealth(vaultStartTimeout, http.StatusOK); err != nil {
		t.Fatalf("testenv: vault cluster: node 0 not active: %v\n%s", err, c.Nodes[0].LogTail(3000))
	}
	for i := 1; i < n; i++ {
		status, out, err := c.Nodes[i].Request(http.MethodPost, "sys/storage/raft/join", "", map[string]any{"leader_api_addr": c.Nodes[0].Addr})
		if err != nil || status != http.StatusOK {
			t.Fatalf("testenv: vault node %d: raft join: %d %v %v", i, status, err, out["errors"])
		}
		c.Unseal(t, i)
		if err := c.Nodes[i].waitHealth(vaultStartTimeout, http.StatusTooManyRequests); err != nil {
			t.Fatalf("testenv: vault cluster: node %d not a standby: %v\n%s", i, err, c.Nodes[i].LogTail(3000))
		}
	}
	// A node joins as a non-voter until autopilot promotes it after the
	// stabilisation time; until then losing the leader loses the quorum.
	c.Nodes[0].mustWrite(t, "sys/storage/raft/autopilot/configuration", map[string]any{"server_stabilization_time": "2s"})
	c.waitVoters(t, n, vaultStartTimeout)
	c.Nodes[0].mustWrite(t, "sys/mounts/transit", map[string]any{"type": "transit"})
	return c
}

// waitVoters polls the Raft configuration until n servers vote.
func (c *VaultCluster) waitVoters(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		voters := 0
		if status, out, err := c.Nodes[0].Request(http.MethodGet, "sys/storage/raft/configuration", "", nil); err == nil && status == http.StatusOK {
			data, _ := out["data"].(map[string]any)
			config, _ := data["config"].(map[string]any)
			servers, _ := config["servers"].([]any)
			for _, s := range servers {
				if m, _ := s.(map[string]any); m["voter"] == true {
					voters++
				}
			}
		}
		if voters == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: vault cluster: %d of %d nodes vote after %s", voters, n, timeout)
		}
		time.Sleep(200 * time.Millisecond) // polling for autopilot, with a deadline
	}
}

// startNode writes node i's configuration and starts it (sealed).
func (c *VaultCluster) startNode(t testing.TB, i int) error {
	dir := filepath.Join(c.dir, fmt.Sprintf("node%d", i))
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		return err
	}
	api, cluster := c.ports[i][0], c.ports[i][1]
	conf := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "node%d"
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr      = "http://127.0.0.1:%d"
cluster_addr  = "https://127.0.0.1:%d"
disable_mlock = true
log_level     = "warn"
`, filepath.Join(dir, "raft"), i, api, cluster, api, cluster)
	confPath := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}
	v := &Vault{
		Addr:    fmt.Sprintf("http://127.0.0.1:%d", api),
		Token:   c.Token,
		client:  &http.Client{Timeout: 30 * time.Second},
		logPath: filepath.Join(dir, "vault.log"),
		exited:  make(chan struct{}),
	}
	logFile, err := os.OpenFile(v.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	v.cmd = exec.Command(c.bin, "server", "-config="+confPath)
	v.cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	v.cmd.Dir = dir
	v.cmd.Stdout, v.cmd.Stderr = logFile, logFile
	// A test binary that is killed takes its Vault nodes with it.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", c.bin, err)
	}
	go func() {
		v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		v.Stop()
		if t.Failed() {
			t.Logf("testenv: vault node %d log (%s):\n%s", i, v.Addr, v.LogTail(3000))
		}
	})
	c.Nodes[i] = v
	// Any answer of sys/health means the listener is up (sealed: 503,
	// not initialised: 501).
	deadline := time.Now().Add(vaultStartTimeout)
	for {
		resp, err := v.get(v.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-v.exited:
			return fmt.Errorf("vault node %d exited as it started:\n%s", i, v.LogTail(2000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault node %d not listening after %s: %v", i, vaultStartTimeout, err)
		}
	}
}

// Kill stops node i with SIGKILL and waits for it to exit.
func (c *VaultCluster) Kill(i int) { c.Nodes[i].Stop() }

// Restart starts node i again after Kill, on the same ports and data; it
// comes back sealed, as a restarted Vault does. Unseal it to rejoin.
func (c *VaultCluster) Restart(t testing.TB, i int) {
	t.Helper()
	if err := c.startNode(t, i); err != nil {
		t.Fatalf("testenv: vault cluster: restart: %v", err)
	}
}

// Unseal gives node i the unseal key.
func (c *VaultCluster) Unseal(t testing.TB, i int) {
	t.Helper()
	status, out, err := c.Nodes[i].Request(http.MethodPut, "sys/unseal", "", map[string]any{"key": c.UnsealKey})
	if err != nil || status != http.StatusOK {
		t.Fatalf("testenv: vault node %d: unseal: %d %v %v", i, status, err, out["errors"])
	}
}

// Seal seals node i (sys/seal). A sealed active node gives up its lock
// and a standby takes over; a standby refuses to seal.
func (c *VaultCluster) Seal(t testing.TB, i int) {
	t.Helper()
	c.Nodes[i].Seal(t)
}

// SealAll seals the whole cluster as an operator would see it after
// `vault operator seal` on the active node and a restart of the others:
// the active node is sealed through sys/seal, every other node is killed
// and restarted (a restarted node comes back sealed). It returns when
// every node answers sys/health as sealed (503).
func (c *VaultCluster) SealAll(t testing.TB) {
	t.Helper()
	for i, v := range c.Nodes {
		if v.health() == http.StatusOK {
			c.Seal(t, i)
		}
	}
	for i, v := range c.Nodes {
		if v.health() != http.StatusServiceUnavailable {
			c.Kill(i)
			c.Restart(t, i)
		}
	}
	for i, v := range c.Nodes {
		if err := v.waitHealth(vaultStartTimeout, http.StatusServiceUnavailable); err != nil {
			t.Fatalf("testenv: vault node %d: not sealed: %v", i, err)
		}
	}
}

// UnsealAll unseals every node and waits up to timeout for an active one.
func (c *VaultCluster) UnsealAll(t testing.TB, timeout time.Duration) {
	t.Helper()
	for i := range c.Nodes {
		c.Unseal(t, i)
	}
	c.Active(t, timeout)
}

// Active returns the index of the node that answers sys/health as active,
// waiting up to timeout for one.
func (c *VaultCluster) Active(t testing.TB, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for i, v := range c.Nodes {
			if v.health() == http.StatusOK {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: vault cluster: no active node after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond) // polling for an election, with a deadline
	}
}

// health returns node's sys/health status: 200 active, 429 standby, 503
// sealed, 501 not initialised, 0 no answer.
func (v *Vault) health() int {
	select {
	case <-v.exited:
		return 0
	default:
	}
	resp, err := v.get(v.Addr + "/v1/sys/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealth polls sys/health until it answers want.
func (v *Vault) waitHealth(timeout time.Duration, want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := 0
	for {
		if last = v.health(); last == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sys/health of %s answered %d, want %d", v.Addr, last, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
