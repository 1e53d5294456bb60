//go:build drill

package drills

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/loadgen"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

// settings are the drill durations and load, from the environment so a
// loaded machine can run shorter drills and an operator longer ones.
type settings struct {
	before     time.Duration // load before the fault
	fault      time.Duration // how long the fault lasts (hang, sealed)
	after      time.Duration // load after recovery, all of which must succeed
	recoverMax time.Duration // longest wait for recovery after the repair
	rate       float64       // multiplies the request rates of the streams
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{before: 5 * time.Second, fault: 30 * time.Second, after: 15 * time.Second, recoverMax: 90 * time.Second, rate: 1}
	for name, d := range map[string]*time.Duration{"DRILL_BEFORE": &s.before, "DRILL_FAULT": &s.fault, "DRILL_AFTER": &s.after, "DRILL_RECOVER_MAX": &s.recoverMax} {
		if v := os.Getenv(name); v != "" {
			var err error
			if *d, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
		}
	}
	if v := os.Getenv("DRILL_RATE"); v != "" {
		var err error
		if s.rate, err = strconv.ParseFloat(v, 64); err != nil || s.rate <= 0 {
			t.Fatalf("DRILL_RATE=%q: want a positive factor", v)
		}
	}
	return s
}

// The load: four streams, each at a steady rate (times DRILL_RATE).
const (
	encodeCached = "encode, cached key" // namespaces whose data key the server holds
	encodeNew    = "encode, new namespace"
	decodeWarm   = "decode, warm cache"
	decodeCold   = "decode, cold cache" // each payload has its own data key, never seen by the server
)

var streams = []struct {
	kind string
	rate float64 // requests per second
}{{encodeCached, 20}, {encodeNew, 2}, {decodeWarm, 10}, {decodeCold, 2}}

const (
	warmNamespaces = 10
	vaultKey       = "temporal"
	maxInFlight    = 200
)

// drill is one run: a Vault cluster, a TCP proxy in front of the node the
// codec server talks to, the codec server, and the load.
type drill struct {
	t        *testing.T
	s        settings
	vault    *testenv.VaultCluster
	proxy    *testenv.TCPProxy
	node     int // the node behind the proxy
	args     []string
	keysFile string   // with drillOptions.keysFile
	env      []string // the AppRole secret ID, not a flag: flags show in ps
	cs       *testenv.CodecServer
	loadURL  string // where the load goes, when not to cs (a balancer)
	http     *http.Client

	warm     []sealedPayload // sealed by the server, decoded once before the fault
	cold     []sealedPayload // sealed elsewhere, one data key each
	coldNext atomic.Int64

	mu     sync.Mutex
	sealed []sealedPayload // every payload the server sealed during the drill

	ready    []readySample
	killedAt time.Time
}

type sealedPayload struct {
	ns      string
	plain   string
	payload *commonpb.Payload
}

type readySample struct {
	at     time.Time
	status int
}

// drillOptions change startDrill.
type drillOptions struct {
	node      int      // the Vault node behind the proxy (default 0, the first active)
	keysFile  bool     // a key file instead of Vault (no cluster, no proxy)
	tokenTTL  string   // the AppRole token TTL (default 1h)
	tokenMax  string   // the AppRole token max TTL (default 24h)
	extraArgs []string // more codec server flags
}

// startDrill starts the Vault cluster, the proxy, the codec server with
// AppRole auth through the proxy, and seals the payloads the load uses.
func startDrill(t *testing.T, o drillOptions) *drill {
	t.Helper()
	d := &drill{t: t, s: loadSettings(t), node: o.node, http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxInFlight}}}
	if o.keysFile {
		d.keysFile = filepath.Join(t.TempDir(), "keys.json")
		if _, err := keyring.CreateFile(d.keysFile, time.Now()); err != nil {
			t.Fatal(err)
		}
		d.args = append([]string{"--insecure-no-auth", "--keys-file", d.keysFile}, o.extraArgs...)
		d.cs = testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: d.args})
		kr, err := keyring.OpenFile(d.keysFile, keyring.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.sealCold(kr)
		d.warmUp()
		return d
	}
	d.vault = testenv.StartVaultCluster(t, 3)
	v := d.vault.Nodes[0]
	v.CreateKey(t, vaultKey)
	v.WritePolicy(t, "codec-server", testenv.TransitPolicy(vaultKey))
	if o.tokenTTL == "" {
		o.tokenTTL, o.tokenMax = "1h", "24h"
	}
	roleID, secretID := v.EnableAppRole(t, "codec-server", testenv.AppRoleOptions{Policies: []string{"codec-server"}, TokenTTL: o.tokenTTL, TokenMaxTTL: o.tokenMax})
	d.proxy = testenv.StartTCPProxy(t, strings.TrimPrefix(d.vault.Nodes[o.node].Addr, "http://"))
	d.args = append([]string{"--insecure-no-auth", "--vault-addr", "http://" + d.proxy.Addr, "--vault-key", vaultKey,
		"--vault-approle-role-id", roleID, "--audit=false"}, o.extraArgs...)
	d.env = []string{"CODEC_SERVER_VAULT_APPROLE_SECRET_ID=" + secretID}
	d.cs = testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: d.args, Env: d.env})
	kr, err := vault.New(context.Background(), vault.Config{Address: d.vault.Nodes[0].Addr, KeyName: vaultKey, AppRoleRoleID: roleID, AppRoleSecretID: secretID})
	if err != nil {
		t.Fatal(err)
	}
	defer kr.Close()
	d.sealCold(kr)
	d.warmUp()
	return d
}

// sealCold seals the payloads of the cold decodes with a codec of this
// process (one data key each), so the server has never seen their keys.
func (d *drill) sealCold(kr keyring.Keyring) {
	t := d.t
	c, err := codec.New(kr, codec.Options{Namespace: "cold", DataKeyMaxUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := int(2*d.s.rate*(d.s.before+d.s.fault+d.s.recoverMax+d.s.after).Seconds()) + 20
	plain := make([]*commonpb.Payload, n)
	for i := range plain {
		plain[i] = payload(fmt.Sprintf("cold %d", i))
	}
	out, err := c.Encode(plain)
	if err != nil {
		t.Fatalf("seal the cold payloads: %v", err)
	}
	for i, p := range out {
		d.cold = append(d.cold, sealedPayload{ns: "cold", plain: fmt.Sprintf("cold %d", i), payload: p})
	}
}

// warmUp seals a payload in each warm namespace and decodes them once.
func (d *drill) warmUp() {
	for i := range warmNamespaces {
		ns := fmt.Sprintf("ns-%d", i)
		plain := "warm " + ns
		sp, status, err := d.encode(context.Background(), d.cs.URL, ns, plain)
		if err != nil || status != 200 {
			d.t.Fatalf("warm-up encode in %s: %d %v", ns, status, err)
		}
		d.warm = append(d.warm, sp)
		if status, err := d.decode(context.Background(), d.cs.URL, sp.ns, []sealedPayload{sp}); err != nil || status != 200 {
			d.t.Fatalf("warm-up decode in %s: %d %v", ns, status, err)
		}
	}
}

func payload(plain string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(strconv.Quote(plain))}
}

// post sends body to url+path with X-Namespace ns and returns the status
// and the answer.
func (d *drill) post(ctx context.Context, url, ns string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", ns)
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// encode seals one payload in ns through the server at url.
func (d *drill) encode(ctx context.Context, url, ns, plain string) (sealedPayload, int, error) {
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: []*commonpb.Payload{payload(plain)}})
	status, answer, err := d.post(ctx, url+"/encode", ns, body)
	if err != nil || status != 200 {
		return sealedPayload{}, status, err
	}
	var ps commonpb.Payloads
	if err := protojson.Unmarshal(answer, &ps); err != nil || len(ps.Payloads) != 1 {
		return sealedPayload{}, status, fmt.Errorf("encode answer: %v (%d payloads)", err, len(ps.Payloads))
	}
	if string(ps.Payloads[0].Metadata["encoding"]) == "json/plain" {
		return sealedPayload{}, status, fmt.Errorf("encode answered a plaintext payload")
	}
	return sealedPayload{ns: ns, plain: plain, payload: ps.Payloads[0]}, status, nil
}

// decode opens sps (all of namespace ns) through the server at url and
// checks each plaintext.
func (d *drill) decode(ctx context.Context, url, ns string, sps []sealedPayload) (int, error) {
	in := make([]*commonpb.Payload, len(sps))
	for i, sp := range sps {
		in[i] = sp.payload
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: in})
	status, answer, err := d.post(ctx, url+"/decode", ns, body)
	if err != nil || status != 200 {
		return status, err
	}
	var ps commonpb.Payloads
	if err := protojson.Unmarshal(answer, &ps); err != nil || len(ps.Payloads) != len(sps) {
		return status, fmt.Errorf("decode answer: %v (%d payloads for %d)", err, len(ps.Payloads), len(sps))
	}
	for i, p := range ps.Payloads {
		if string(p.Data) != strconv.Quote(sps[i].plain) {
			return status, fmt.Errorf("payload %d decoded to %q, want %q", i, p.Data, strconv.Quote(sps[i].plain))
		}
	}
	return status, nil
}

// request makes one request of the stream kind.
func (d *drill) request(ctx context.Context, kind string, seq int) loadgen.Sample {
	t0 := time.Now()
	url := d.cs.URL
	if d.loadURL != "" {
		url = d.loadURL
	}
	var (
		status int
		err    error
	)
	switch kind {
	case encodeCached, encodeNew:
		ns := fmt.Sprintf("ns-%d", seq%warmNamespaces)
		if kind == encodeNew {
			ns = fmt.Sprintf("new-%d-%d", seq, t0.UnixNano()%1000)
		}
		var sp sealedPayload
		sp, status, err = d.encode(ctx, url, ns, fmt.Sprintf("%s %d", kind, seq))
		if err == nil && status == 200 {
			d.mu.Lock()
			d.sealed = append(d.sealed, sp)
			d.mu.Unlock()
		}
	case decodeWarm:
		sp := d.warm[seq%len(d.warm)]
		status, err = d.decode(ctx, url, sp.ns, []sealedPayload{sp})
	case decodeCold:
		i := int(d.coldNext.Add(1) - 1)
		if i >= len(d.cold) {
			i = i % len(d.cold) // more than planned: warm by now
		}
		status, err = d.decode(ctx, url, "cold", []sealedPayload{d.cold[i]})
	}
	return loadgen.Sample{Start: t0, Latency: time.Since(t0), Status: status, Err: err}
}

// run is what one drill measured.
type run struct {
	name                   string
	faultAt, repairAt      time.Time // the fault injected and repaired (or, for a kill, a standby active)
	recoveredAt, end       time.Time
	samples                map[string][]loadgen.Sample
	readyWent503, ready200 bool
}

// runLoad sends the load, calls fault after the warm-up period and repair
// when it returns a time (the repair instant), waits for recovery, keeps
// the load for DRILL_AFTER, and returns what it measured.
func (d *drill) runLoad(name string, fault func(), repair func() time.Time) *run {
	t := d.t
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &run{name: name, samples: map[string][]loadgen.Sample{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := loadgen.Paced(ctx, st.rate*d.s.rate, maxInFlight, func(ctx context.Context, seq int) loadgen.Sample {
				return d.request(ctx, st.kind, seq)
			})
			mu.Lock()
			r.samples[st.kind] = s
			mu.Unlock()
		}()
	}
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		d.pollReady(ctx)
	}()

	time.Sleep(d.s.before)
	r.faultAt = time.Now()
	t.Logf("%s: fault at %s", name, r.faultAt.Format(time.TimeOnly))
	fault()
	r.repairAt = repair()
	t.Logf("%s: repaired at %s (%.1fs after the fault)", name, r.repairAt.Format(time.TimeOnly), r.repairAt.Sub(r.faultAt).Seconds())
	r.recoveredAt = d.waitRecovered(r.repairAt)
	t.Logf("%s: new namespaces encode again %.1fs after the repair", name, r.recoveredAt.Sub(r.repairAt).Seconds())
	time.Sleep(d.s.after)
	r.end = time.Now()
	cancel()
	wg.Wait()
	<-readyDone
	for _, s := range d.ready {
		if s.at.After(r.faultAt) && s.status == http.StatusServiceUnavailable {
			r.readyWent503 = true
		}
	}
	r.ready200 = len(d.ready) > 0 && d.ready[len(d.ready)-1].status == http.StatusOK
	return r
}

// pollReady records /readyz every 500ms until ctx ends.
func (d *drill) pollReady(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, d.cs.URL+"/readyz", nil)
		status := 0
		if resp, err := d.http.Do(req); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		d.ready = append(d.ready, readySample{at: time.Now(), status: status})
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// waitRecovered probes an encode in a new namespace (it needs Vault) every
// 250ms from the repair until one succeeds and /readyz answers 200.
func (d *drill) waitRecovered(from time.Time) time.Time {
	deadline := from.Add(d.s.recoverMax)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, status, err := d.encode(ctx, d.cs.URL, fmt.Sprintf("probe-%d-%d", i, time.Now().UnixNano()), "probe")
		cancel()
		if err == nil && status == 200 && d.readyStatus() == http.StatusOK {
			return time.Now()
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("not recovered %s after the repair: last probe %d %v", d.s.recoverMax, status, err)
		}
		time.Sleep(250 * time.Millisecond) // polling for recovery, with a deadline
	}
}

func (d *drill) readyStatus() int {
	resp, err := d.http.Get(d.cs.URL + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// window returns the samples of kind that started in [from, to).
func (r *run) window(kind string, from, to time.Time) []loadgen.Sample {
	var out []loadgen.Sample
	for _, s := range r.samples[kind] {
		if !s.Start.Before(from) && s.Start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

func failed(s loadgen.Sample) bool { return s.Err != nil || s.Status != http.StatusOK }

// p99 of the latencies of the samples that succeeded.
func p99(ss []loadgen.Sample) time.Duration {
	var lat []time.Duration
	for _, s := range ss {
		if !failed(s) {
			lat = append(lat, s.Latency)
		}
	}
	slices.Sort(lat)
	return loadgen.Percentile(lat, 99)
}

func maxLatency(ss []loadgen.Sample) time.Duration {
	var m time.Duration
	for _, s := range ss {
		m = max(m, s.Latency)
	}
	return m
}

// failures counts failed samples by status ("busy": not sent, "error":
// no answer).
func failures(ss []loadgen.Sample) map[string]int {
	out := map[string]int{}
	for _, s := range ss {
		switch {
		case s.Status == 0 && s.Err == loadgen.ErrBusy:
			out["not sent"]++
		case s.Status == 0:
			out["no answer"]++
		case s.Status != http.StatusOK:
			out[strconv.Itoa(s.Status)]++
		case s.Err != nil:
			out["wrong answer"]++
		}
	}
	return out
}

func fmtFailures(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
}

// report logs the drill's figures as rows of the table in
// docs/OPERATIONS.md, and appends them to $DRILL_REPORT when set.
func (d *drill) report(r *run, undecodable int) {
	var b strings.Builder
	for _, st := range streams {
		all := r.samples[st.kind]
		during := r.window(st.kind, r.faultAt, r.repairAt)
		after := r.window(st.kind, r.recoveredAt, r.end)
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %.1f s | %s | %d |\n",
			r.name, st.kind, len(all), fmtFailures(failures(all)), ms(p99(during)), ms(p99(after)),
			r.recoveredAt.Sub(r.repairAt).Seconds(), readyText(r), undecodable)
	}
	d.t.Logf("figures (drill | load | sent | failed | p99 during ms | p99 after ms | recovered after repair | /readyz | undecodable):\n%s", b.String())
	view := d.operatorView()
	d.t.Logf("what the operator saw:\n%s", view)
	fmt.Fprintf(&b, "\n%s: what the operator saw:\n%s\n", r.name, view)
	if path := os.Getenv("DRILL_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			d.t.Fatal(err)
		}
		defer f.Close()
		f.WriteString(b.String())
	}
}

var logLineRE = regexp.MustCompile(`level=(WARN|ERROR) msg="?((?:[^"\\]|\\.)*?)"?(?: [a-z_]+=|$)`)

// operatorView returns the non-zero failure and keyring-call series of the
// server's /metrics, and its warning and error log lines by message.
func (d *drill) operatorView() string {
	var b strings.Builder
	resp, err := d.http.Get(d.cs.URL + "/metrics")
	if err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(raw), "\n") {
			interesting := strings.HasPrefix(line, "codec_server_failures_total") || strings.HasPrefix(line, "codec_server_keyring_calls_total") ||
				strings.HasPrefix(line, "codec_server_key_file_reload") ||
				(strings.HasPrefix(line, "codec_server_requests_total") && !strings.Contains(line, `code="200"`))
			if interesting && !strings.HasSuffix(line, " 0") {
				fmt.Fprintf(&b, "    %s\n", line)
			}
		}
	}
	counts := map[string]int{}
	var order []string
	for _, m := range logLineRE.FindAllStringSubmatch(d.cs.Output(), -1) {
		k := m[1] + " " + m[2]
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	for _, k := range order {
		fmt.Fprintf(&b, "    log %dx %s\n", counts[k], k)
	}
	return b.String()
}

func readyText(r *run) string {
	s := "200 throughout"
	if r.readyWent503 {
		s = "503, then 200"
	}
	if !r.ready200 {
		s += " (not 200 at the end)"
	}
	return s
}

// checkNoDataLoss decodes every payload the server sealed during the drill
// with a new codec server (cold caches, straight to a Vault node) and
// returns how many did not decode to their plaintext.
func (d *drill) checkNoDataLoss(node int) int {
	t := d.t
	args := slices.Clone(d.args)
	for i, a := range args {
		if a == "--vault-addr" {
			args[i+1] = d.vault.Nodes[node].Addr
		}
	}
	fresh := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: args, Env: d.env})
	d.mu.Lock()
	sealed := slices.Clone(d.sealed)
	d.mu.Unlock()
	byNS := map[string][]sealedPayload{}
	for _, sp := range sealed {
		byNS[sp.ns] = append(byNS[sp.ns], sp)
	}
	bad := 0
	for ns, sps := range byNS {
		for lo := 0; lo < len(sps); lo += 200 {
			batch := sps[lo:min(lo+200, len(sps))]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			status, err := d.decode(ctx, fresh.URL, ns, batch)
			cancel()
			if err != nil || status != 200 {
				t.Errorf("after the drill, %d payloads of namespace %s do not decode: %d %v", len(batch), ns, status, err)
				bad += len(batch)
			}
		}
	}
	t.Logf("after the drill: %d payloads sealed during the drill decoded by a new codec server (cold caches): %d undecodable", len(sealed), bad)
	if len(sealed) == 0 {
		t.Fatal("no payload was sealed during the drill")
	}
	return bad
}
