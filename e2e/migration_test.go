package e2e

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// samplesCodec is the encryption codec of the Temporal Go samples
// (encryption/codec.go): AES-256-GCM under one static key, nonce
// prepended, no additional data, metadata binary/encrypted and
// encryption-key-id. Written here from the samples' description so the
// test is a client as teams run it today.
type samplesCodec struct {
	keyID string
	key   []byte
}

func (c samplesCodec) aead() cipher.AEAD {
	b, err := aes.NewCipher(c.key)
	if err != nil {
		panic(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

func (c samplesCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, 12)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{"encoding": []byte("binary/encrypted"), "encryption-key-id": []byte(c.keyID)},
			Data:     c.aead().Seal(nonce, nonce, b, nil),
		}
	}
	return out, nil
}

func (c samplesCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.Metadata["encoding"]) != "binary/encrypted" {
			out[i] = p
			continue
		}
		if len(p.Data) < 12 {
			return nil, fmt.Errorf("samples codec: short data")
		}
		b, err := c.aead().Open(nil, p.Data[:12], p.Data[12:], nil)
		if err != nil {
			return nil, fmt.Errorf("samples codec: %w", err)
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(b, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// samplesDataConverter is the Go sample's default converter
// (CompressAndEncryptDataConverter): zlib with AlwaysEncode, then the
// static-key codec. Codecs apply last to first on encode.
func samplesDataConverter(keyID string) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(),
		samplesCodec{keyID: keyID, key: keyringtest.SamplesKey},
		converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}))
}

// order is the migration workflow's input; every field is a secret.
type order struct {
	Customer, Card string
}

const migrationWorkflowName = "Migration"

// migrationWorkflow charges in an activity, then waits for an approval
// signal: a workflow that is still running when the workers change.
func migrationWorkflow(ctx workflow.Context, o order) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	var charged string
	if err := workflow.ExecuteActivity(ctx, "Charge", o).Get(ctx, &charged); err != nil {
		return "", err
	}
	var approver string
	workflow.GetSignalChannel(ctx, "approve").Receive(ctx, &approver)
	return charged + "; approved by " + approver, nil
}

func charge(_ context.Context, o order) (string, error) {
	return "charged " + o.Card + " for " + o.Customer, nil
}

func startMigrationWorker(t *testing.T, c client.Client, tq string) worker.Worker {
	t.Helper()
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(migrationWorkflow, workflow.RegisterOptions{Name: migrationWorkflowName})
	w.RegisterActivityWithOptions(charge, activityOptions("Charge"))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return w
}

// waitForEvent polls the raw history until an event of type et appears.
func waitForEvent(t *testing.T, c client.Client, wid string, et enumspb.EventType) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		it := c.GetWorkflowHistory(context.Background(), wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				break
			}
			if ev.GetEventType() == et {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("workflow %s: no %s event within a minute", wid, et)
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// assertNoSecrets checks that no secret appears in the text or any
// base64-decoded string of a JSON document: for what Temporal stores (-o
// json without a codec), where payloads are base64.
func assertNoSecrets(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	hay := out + "\n" + strings.Join(decodedStrings(doc), "\n")
	for _, s := range secrets {
		if strings.Contains(hay, s) {
			t.Errorf("%s: plaintext %q found", what, s)
		}
	}
}

// encodings counts the sealed payloads of a raw history by format:
// "envelope/v2" (or v1) or "samples" (no encryption-format).
func encodings(t *testing.T, out string) map[string]int {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	n := make(map[string]int)
	for _, p := range payloads(doc) {
		md := p["metadata"].(map[string]any)
		switch {
		case string(b64(md["encoding"])) != "binary/encrypted":
			n["plain:"+string(b64(md["encoding"]))]++
		case md["encryption-format"] != nil:
			n[string(b64(md["encryption-format"]))]++
		default:
			n["samples"]++
		}
	}
	return n
}

// TestMigrationFromSamples follows docs/MIGRATION.md step by step: a team
// runs the Temporal samples' encryption (zlib on, static key, default key
// ID ""), then moves to envelope with workflows in flight.
func TestMigrationFromSamples(t *testing.T) {
	t.Parallel()
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	const tq = "tq-migration"
	card, customer, approver := "4000 "+randHex(t, 6), "Ada "+randHex(t, 4), "grace."+randHex(t, 4)
	newCard, newCustomer, newApprover := "5500 "+randHex(t, 6), "Bob "+randHex(t, 4), "carol."+randHex(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Before: the samples' client and worker. The workflow charges and then
	// waits for its approval signal: it is in flight when the workers change.
	oldClient := tc.Client(t, client.Options{DataConverter: samplesDataConverter("")})
	oldWorker := startMigrationWorker(t, oldClient, tq)
	inflight, err := oldClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "migration-inflight-" + randHex(t, 3), TaskQueue: tq}, migrationWorkflowName, order{Customer: customer, Card: card})
	if err != nil {
		t.Fatal(err)
	}
	waitForEvent(t, oldClient, inflight.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
	oldWorker.Stop()

	// Step 1: a key file with a fresh envelope key and the samples' key as a
	// legacy key under the IDs the samples used ("" by default).
	keys := keyringtest.SamplesKeyFile(t, "", "test")

	// Step 2: the codec server with that key file reads the samples'
	// histories, compressed payloads included (the CLI and the UI).
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{"--keys-file", keys}})
	// The samples' history in flight, as workflow show --detailed prints it
	// decoded: the input and the activity's result.
	inflightLines := []string{"input[0].Customer: " + customer, "input[0].Card: " + card, "result[0]: charged " + card + " for " + customer}
	t.Run("step 2: the codec server decodes the samples' history", func(t *testing.T) {
		res := tc.CLI(ctx, "workflow", "show", "-w", inflight.GetID(), "--detailed", "--codec-endpoint", cs.URL)
		if res.Err != nil {
			t.Fatalf("%s\n%s", res, cs.Output())
		}
		assertLines(t, "workflow show --detailed through the codec server", res.Stdout, inflightLines...)
		// binary/zlib and binary/encrypted in the base64 the CLI prints.
		assertNotShown(t, "workflow show --detailed through the codec server", res.Stdout, "YmluYXJ5L3psaWI=", "YmluYXJ5L2VuY3J5cHRlZA==")
	})

	t.Run("the CLI's {namespace} placeholder works with and without -n", func(t *testing.T) {
		for _, args := range [][]string{
			{"--codec-endpoint", cs.URL + "/{namespace}"},                  // the CLI calls //decode
			{"--codec-endpoint", cs.URL + "/{namespace}", "-n", "default"}, // the CLI calls /default/decode
		} {
			res := tc.CLI(ctx, append([]string{"workflow", "show", "-w", inflight.GetID(), "--detailed"}, args...)...)
			if res.Err != nil {
				t.Fatalf("%s\n%s", res, cs.Output())
			}
			assertLines(t, strings.Join(args, " "), res.Stdout, inflightLines...)
		}
	})

	// The old client signals the workflow in flight (a samples payload).
	if err := oldClient.SignalWorkflow(ctx, inflight.GetID(), "", "approve", approver); err != nil {
		t.Fatal(err)
	}

	// Step 3: envelope workers (codecenv, the same key file) take over and
	// finish the workflow the old client started and signalled.
	env, err := codecenv.Load(ctx, codecenv.Options{
		LookupEnv: lookupMap(map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "TEMPORAL_ADDRESS": tc.Address, "TEMPORAL_NAMESPACE": tc.Namespace}),
		Temporal:  envconfigNoFile(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	newClient := tc.Client(t, env.ClientOptions)
	newWorker := startMigrationWorker(t, newClient, tq)
	defer newWorker.Stop()
	t.Run("step 3: an envelope worker finishes a workflow the samples' client started", func(t *testing.T) {
		var res string
		if err := newClient.GetWorkflow(ctx, inflight.GetID(), "").Get(ctx, &res); err != nil {
			t.Fatalf("workflow in flight: %v", err)
		}
		if want := "charged " + card + " for " + customer + "; approved by " + approver; res != want {
			t.Errorf("result %q, want %q", res, want)
		}
	})

	// Step 4: clients move to envelope too; new workflows are sealed in the
	// envelope format from start to end.
	var fresh client.WorkflowRun
	t.Run("step 4: envelope clients start new workflows", func(t *testing.T) {
		fresh, err = newClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "migration-new-" + randHex(t, 3), TaskQueue: tq}, migrationWorkflowName, order{Customer: newCustomer, Card: newCard})
		if err != nil {
			t.Fatal(err)
		}
		waitForEvent(t, newClient, fresh.GetID(), enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
		if err := newClient.SignalWorkflow(ctx, fresh.GetID(), "", "approve", newApprover); err != nil {
			t.Fatal(err)
		}
		var res string
		if err := fresh.Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		raw := tc.CLI(ctx, "workflow", "show", "-w", fresh.GetID(), "-o", "json")
		if raw.Err != nil {
			t.Fatal(raw)
		}
		if n := encodings(t, raw.Stdout); n["samples"] != 0 || n["envelope/v2"] < 5 || len(n) != 1 {
			t.Errorf("new workflow's payloads by format: %v, want only envelope/v2", n)
		}
	})

	// Every history keeps Temporal free of plaintext, and reads back whole
	// through the codec server and offline with codec-server decode.
	for _, wf := range []struct {
		name    string
		id      string
		secrets []string
		shown   []string // lines of workflow show --detailed
		decoded []string // in codec-server decode's text view
	}{
		{"the migrated workflow", inflight.GetID(), []string{card, customer, approver},
			[]string{"input[0].Customer: " + customer, "input[0].Card: " + card, "input[0]: " + approver, "result[0]: charged " + card + " for " + customer + "; approved by " + approver},
			[]string{`"Customer": "` + customer + `"`, `"Card": "` + card + `"`, `"` + approver + `"`}},
		{"the new workflow", fresh.GetID(), []string{newCard, newCustomer, newApprover},
			[]string{"input[0].Customer: " + newCustomer, "input[0].Card: " + newCard, "input[0]: " + newApprover, "result[0]: charged " + newCard + " for " + newCustomer + "; approved by " + newApprover},
			[]string{`"Customer": "` + newCustomer + `"`, `"Card": "` + newCard + `"`, `"` + newApprover + `"`}},
	} {
		t.Run(wf.name+" is sealed in Temporal and readable through the codec", func(t *testing.T) {
			raw := tc.CLI(ctx, "workflow", "show", "-w", wf.id, "-o", "json")
			if raw.Err != nil {
				t.Fatal(raw)
			}
			assertNoSecrets(t, "raw history", raw.Stdout, wf.secrets...)
			dec := tc.CLI(ctx, "workflow", "show", "-w", wf.id, "--detailed", "--codec-endpoint", cs.URL)
			if dec.Err != nil {
				t.Fatalf("%s\n%s", dec, cs.Output())
			}
			assertLines(t, "workflow show --detailed through the codec server", dec.Stdout, wf.shown...)

			cmd := exec.CommandContext(ctx, testenv.BuiltBinary(t, "codec-server"), "decode", "--keys-file", keys)
			cmd.Stdin = strings.NewReader(raw.Stdout)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("codec-server decode: %v\n%s", err, stderrOf(err))
			}
			assertShown(t, "codec-server decode", string(out), wf.decoded...)
		})
	}

	t.Run("step 5: without the legacy key new histories decode, old ones are refused", func(t *testing.T) {
		step5(t, ctx, tc, inflight.GetID(), fresh.GetID())
	})
}

// step5 is the last step of the migration: a key file without the legacy
// key still decodes envelope histories and refuses the old ones.
func step5(t *testing.T, ctx context.Context, tc *testenv.Temporal, migrated, fresh string) {
	t.Helper()
	withoutLegacy := keyringtest.SamplesKeyFile(t) // the same envelope key, no legacy key
	decode := func(wid string) ([]byte, error) {
		raw := tc.CLI(ctx, "workflow", "show", "-w", wid, "-o", "json")
		if raw.Err != nil {
			t.Fatal(raw)
		}
		cmd := exec.CommandContext(ctx, testenv.BuiltBinary(t, "codec-server"), "decode", "--keys-file", withoutLegacy)
		cmd.Stdin = strings.NewReader(raw.Stdout)
		return cmd.Output()
	}
	if _, err := decode(fresh); err != nil {
		t.Errorf("new workflow without the legacy key: %v\n%s", err, stderrOf(err))
	}
	out, err := decode(migrated)
	if err == nil || len(out) > 0 || !strings.Contains(stderrOf(err), "key") {
		t.Errorf("migrated workflow without the legacy key: err %v, stderr %q, %d bytes out; want a refusal", err, stderrOf(err), len(out))
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
func activityOptions(name string) activity.RegisterOptions {
	return activity.RegisterOptions{Name: name}
}

// envconfigNoFile keeps envconfig away from the user's Temporal config
// file: the test's variables alone decide.
func envconfigNoFile() envconfig.LoadClientOptionsRequest {
	return envconfig.LoadClientOptionsRequest{DisableFile: true}
}
