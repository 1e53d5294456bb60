package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
)

// failingWorkflow runs an activity that panics with a message holding a
// secret, and fails with it.
func failingWorkflow(ctx workflow.Context, card string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteActivity(ctx, "Validate", card).Get(ctx, nil)
}

// validate panics like a bug would: the SDK turns the panic into a failure
// whose message is the panic's value ("invalid card 4111 ...") and whose
// stack trace is the real one of this goroutine, naming the code that
// panicked (panicFrame, in this file).
func validate(_ context.Context, card string) error {
	declineCardWithPanic(card)
	return nil
}

//go:noinline
func declineCardWithPanic(card string) {
	panic("invalid card " + card)
}

// panicFrame and panicFile are in the stack trace of validate's failure:
// code the history must not reveal without the key, as any value a stack
// trace holds.
const (
	panicFrame = "e2e.declineCardWithPanic("
	panicFile  = "e2e/failure_test.go:"
)

// TestFailureMessagesAreSealed: with codecenv's failure converter an
// activity's error message and its real stack trace reach Temporal only
// sealed. Through the codec server the CLI's default view says "Encoded
// failure" (as docs/OPERATIONS.md and the README's troubleshooting say),
// --detailed shows the message and the stack trace, and so does the Web UI.
// The same UI session shows a history written by the samples' client
// (compressed, default key ID ""), decoded.
func TestFailureMessagesAreSealed(t *testing.T) {
	t.Parallel()
	keys := keyringtest.SamplesKeyFile(t, "")
	uiPort := testenv.FreePort(t)
	uiOrigin := fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{Args: []string{"--keys-file", keys, "--cors-origin", uiOrigin}})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{UIPort: uiPort, UICodecEndpoint: cs.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	env, err := codecenv.Load(ctx, codecenv.Options{
		LookupEnv: lookupMap(map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "TEMPORAL_ADDRESS": tc.Address, "TEMPORAL_NAMESPACE": tc.Namespace}),
		Temporal:  envconfigNoFile(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	c := tc.Client(t, env.ClientOptions)
	const tq = "tq-failure"
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(failingWorkflow, workflow.RegisterOptions{Name: "Failing"})
	w.RegisterActivityWithOptions(validate, activityOptions("Validate"))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	card := "4111 " + randHex(t, 6)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "failure-" + randHex(t, 3), TaskQueue: tq}, "Failing", card)
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	// The client decodes the failure: the panic's message and its stack
	// trace are there in full.
	var pe *temporal.PanicError
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "invalid card "+card) {
		t.Fatalf("workflow error %v, want the activity's panic", err)
	}
	if st := pe.StackTrace(); !strings.Contains(st, panicFrame) || !strings.Contains(st, panicFile) {
		t.Fatalf("the panic's stack trace lacks %q and %q:\n%s", panicFrame, panicFile, st)
	}

	t.Run("the raw history holds no secret", func(t *testing.T) {
		raw := tc.CLI(ctx, "workflow", "show", "-w", run.GetID(), "-o", "json")
		if raw.Err != nil {
			t.Fatal(raw)
		}
		assertNoSecrets(t, "raw history", raw.Stdout, card, panicFrame, panicFile)
		text := tc.CLI(ctx, "workflow", "show", "-w", run.GetID(), "--detailed")
		if text.Err != nil {
			t.Fatal(text)
		}
		assertNotShown(t, "workflow show --detailed without the codec", text.Stdout, card, panicFrame, panicFile)
		assertLines(t, "workflow show --detailed without the codec", text.Stdout, "failure.message: Encoded failure")
	})
	t.Run("the CLI's default view says Encoded failure, as documented", func(t *testing.T) {
		for _, view := range [][]string{{"workflow", "show"}, {"workflow", "describe"}} {
			res := tc.CLI(ctx, append(view, "-w", run.GetID(), "--codec-endpoint", cs.URL)...)
			if res.Err != nil {
				t.Fatalf("%s\n%s", res, cs.Output())
			}
			assertShown(t, strings.Join(view, " "), res.Stdout, "Message: Encoded failure")
		}
	})
	t.Run("the CLI's detailed view shows the message and the stack trace", func(t *testing.T) {
		// The command docs/OPERATIONS.md gives for reading a failure.
		dec := tc.CLI(ctx, "workflow", "show", "-w", run.GetID(), "--detailed", "--codec-endpoint", cs.URL)
		if dec.Err != nil {
			t.Fatalf("%s\n%s", dec, cs.Output())
		}
		assertLines(t, "workflow show --detailed through the codec server", dec.Stdout,
			"failure.encodedAttributes.message: invalid card "+card)
		assertShown(t, "workflow show --detailed through the codec server", dec.Stdout,
			"failure.encodedAttributes.stack_trace: ", panicFrame, panicFile)
	})

	// A workflow of the samples' client: its input is compressed and sealed
	// under the samples' default key ID "".
	oldClient := tc.Client(t, client.Options{DataConverter: samplesDataConverter("")})
	oldSecret := "Ada " + randHex(t, 5)
	old, err := oldClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "samples-" + randHex(t, 3), TaskQueue: "tq-nobody"}, migrationWorkflowName, order{Customer: oldSecret, Card: card})
	if err != nil {
		t.Fatal(err)
	}

	b := testenv.StartChromium(t)
	for _, page := range []struct {
		name, wid, rid string
		want           []string
	}{
		{"the Web UI shows the failure message and stack trace", run.GetID(), run.GetRunID(), []string{"invalid card " + card, panicFrame, panicFile}},
		{"the Web UI shows a samples client's input", old.GetID(), old.GetRunID(), []string{oldSecret}},
	} {
		t.Run(page.name, func(t *testing.T) {
			u := fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", tc.UIURL, url.PathEscape(page.wid), url.PathEscape(page.rid))
			pctx, cancel := context.WithTimeout(b.Ctx, 2*time.Minute)
			defer cancel()
			if err := chromedp.Do(pctx, chromedp.Navigate(u)); err != nil {
				t.Fatalf("open %s: %v", u, err)
			}
			wantJS, _ := json.Marshal(page.want)
			// The failure's message may sit in a collapsed event: open
			// every expandable row while polling.
			_, err := chromedp.Run(pctx, chromedp.Poll[bool](fmt.Sprintf(`(() => {
				document.querySelectorAll('[aria-expanded="false"]').forEach(e => { try { e.click() } catch (_) {} });
				const t = document.body ? document.body.innerText : "";
				return %s.every(w => t.includes(w)); })()`, wantJS),
				chromedp.WithPollingInterval(500*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
			shot := screenshot(t, b.Ctx, "webui-"+strings.ReplaceAll(page.wid, "/", "_")+".png")
			if err != nil {
				text, _ := chromedp.Run(b.Ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
				t.Fatalf("the page never showed %q: %v\nscreenshot: %s\npage text:\n%s\ncodec server:\n%s", page.want, err, shot, text, cs.Output())
			}
			t.Logf("screenshot: %s", shot)
		})
	}
}
