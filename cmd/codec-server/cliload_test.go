//go:build loadtest

// Load tests: measurements, not checks; run by `make bench` with -tags loadtest.

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
)

// TestLoadCLIWorkflowShow drives the real temporal CLI (v1.5.1) against a
// real dev server: `temporal workflow show -o json` of a history of 1,502
// events, 1,500 of them carrying one sealed payload (the CLI sends one
// POST /decode per payload), three ways, in interleaved rounds whose order
// rotates: without a codec (the floor), through the SDK's
// NewPayloadCodecHTTPHandler around the same codec without auth (the
// reference, in this test process), and through the real codec-server
// binary with JWT (RS256) and the audit log on (to a file). It reports the
// median wall time of each and the ratios; it asserts nothing about time.
// Run it (after make build is not needed: the test builds the binary) with
//
//	go test -tags loadtest -count=1 -run TestLoadCLIWorkflowShow -v ./cmd/codec-server/
func TestLoadCLIWorkflowShow(t *testing.T) {
	const signals, rounds = 1500, 7
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.OpenFile(keys, keyring.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cdc, err := codec.New(kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// The history: a workflow no worker runs, signalled 1,500 times with
	// a payload sealed by the codec.
	c := tc.Client(t, client.Options{DataConverter: converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), cdc)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const secret = "cli-load-signal-value-0123456789"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "cli-load", TaskQueue: "nobody-polls-this"}, "Nothing", secret)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, signals)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < signals-1; i += 8 {
				if err := c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "sig", secret); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	events := 0
	for it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); it.HasNext(); {
		if _, err := it.Next(); err != nil {
			t.Fatal(err)
		}
		events++
	}
	t.Logf("history of %d events, %d payloads (1 input + %d signals)", events, signals, signals-1)

	// The servers.
	iss := jwttest.New(t, jwttest.Options{})
	p := start(t, dir, nil, "--listen", "127.0.0.1:0", "--keys-file", keys,
		"--jwks-file", iss.WriteJWKSFile(t, filepath.Join(dir, "jwks.json")), "--jwt-issuer", iss.IssuerURL(), "--jwt-audience", iss.Audience(),
		"--audit-log", filepath.Join(dir, "audit.jsonl"))
	envelopeURL := p.ready(t)
	token := iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}, ExpiresAt: time.Now().Add(time.Hour)})
	sdk := httptest.NewServer(converter.NewPayloadCodecHTTPHandler(cdc))
	defer sdk.Close()

	type variant struct {
		name  string
		args  []string
		plain bool // the output must hold plaintext
		times []time.Duration
	}
	variants := []*variant{
		{name: "no codec (plain history)"},
		{name: "SDK NewPayloadCodecHTTPHandler, no auth", args: []string{"--codec-endpoint", sdk.URL}, plain: true},
		{name: "envelope binary, JWT + audit + metrics", args: []string{"--codec-endpoint", envelopeURL, "--codec-auth", token}, plain: true},
	}
	want := base64.StdEncoding.EncodeToString([]byte(`"` + secret + `"`))
	show := func(v *variant) time.Duration {
		args := append([]string{"workflow", "show", "-w", run.GetID(), "-r", run.GetRunID(), "-o", "json"}, v.args...)
		r := tc.CLI(ctx, args...)
		if r.Err != nil {
			t.Fatal(r)
		}
		if got := strings.Count(r.Stdout, want); v.plain && got < signals || !v.plain && got != 0 {
			t.Fatalf("%s: %d decoded payloads in the output, want %d", v.name, got, map[bool]int{true: signals, false: 0}[v.plain])
		}
		return r.Duration
	}
	for _, v := range variants { // warm up
		show(v)
	}
	for r := range rounds {
		for k := range variants {
			v := variants[(r+k)%len(variants)]
			v.times = append(v.times, show(v))
		}
	}
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	t.Logf("temporal workflow show -o json, %d events, %d interleaved rounds (medians):", events, rounds)
	for _, v := range variants {
		t.Logf("  %-42s %8s   (all: %v)", v.name, median(v.times).Round(time.Millisecond), roundAll(v.times))
	}
	ref, ours := median(variants[1].times), median(variants[2].times)
	t.Logf("envelope with JWT / SDK reference without auth: %.2f (goal <= 1.00: no slower)", float64(ours)/float64(ref))
	fmt.Printf("CLI-SHOW-RATIO %.2f\n", float64(ours)/float64(ref))
}

func roundAll(d []time.Duration) []string {
	out := make([]string, len(d))
	for i, x := range d {
		out[i] = x.Round(time.Millisecond).String()
	}
	return out
}
