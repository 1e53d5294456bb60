// Command starter starts the example onboarding workflow with a sensitive
// customer record and a memo, queries its status, signals the approval and
// prints the result. All of it travels sealed by the envelope codec; only
// this process and the codec server can read it.
//
// It takes the same connection and keyring settings as examples/worker.
//
//	go run ./examples/starter --keys-file keys.json --name "Ada Lovelace"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/examples/internal/exampleenv"
	"github.com/envelopecodec/envelope/examples/internal/onboarding"
	"github.com/envelopecodec/envelope/internal/version"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "starter:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if version.Requested(args) {
		fmt.Fprintln(stdout, version.String("starter"))
		return nil
	}
	fs := flag.NewFlagSet("starter", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	keys.Subject = onboarding.DataSubject
	taskQueue := fs.String("task-queue", onboarding.DefaultTaskQueue, "task queue of the worker")
	workflowID := fs.String("workflow-id", "", "workflow ID (default onboard-<customer id>-<time>)")
	var c onboarding.Customer
	fs.StringVar(&c.ID, "customer-id", "C-1042", "customer ID")
	fs.StringVar(&c.Name, "name", "Ada Lovelace", "customer name (sensitive)")
	fs.StringVar(&c.Email, "email", "ada.lovelace@example.com", "customer email (sensitive)")
	fs.StringVar(&c.Card, "card", "4111 1111 1111 1111", "payment card number (sensitive)")
	fs.StringVar(&c.Address, "address", "12 St James's Square, London", "postal address (sensitive)")
	var ap onboarding.Approval
	fs.StringVar(&ap.By, "approver", "grace@example.com", "who approves (sent by signal)")
	fs.StringVar(&ap.Note, "note", "identity checked by phone", "approval note (sent by signal)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait for the workflow")
	emailIndex := fs.String("email-index", "CustomerEmailIdx", "Keyword search attribute set to the blind-index token of --email, so `codec-server blind-index --field email --attribute ATTR EMAIL` finds the workflow (docs/SEARCH.md); skipped with a warning when the namespace has no such attribute; empty turns it off")
	exampleenv.SetUsage(fs, "starter starts the example onboarding workflow with a sensitive customer record, queries it, signals the approval and prints the result.")
	if err := exampleenv.Parse(fs, args); err != nil {
		return err
	}
	if *workflowID == "" {
		*workflowID = fmt.Sprintf("onboard-%s-%d", c.ID, time.Now().Unix())
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tc, env, err := keys.Dial(ctx, logger)
	if err != nil {
		return err
	}
	defer env.Close()
	defer tc.Close()
	search, err := emailSearchAttribute(ctx, tc, env, *emailIndex, c.Email, logger)
	if err != nil {
		return err
	}

	wr, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        *workflowID,
		TaskQueue: *taskQueue,
		// The memo goes through the data converter too: it is sealed.
		Memo: map[string]any{"customer": c.Name, "email": c.Email},
		// Search attributes are not: this one holds a token, not the e-mail.
		TypedSearchAttributes: search,
	}, onboarding.Onboard, c)
	if err != nil {
		return fmt.Errorf("start workflow: %w", err)
	}
	fmt.Fprintf(stdout, "started workflow_id=%s run_id=%s\n", wr.GetID(), wr.GetRunID())

	status, err := queryStatus(ctx, tc, wr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "status: %s (%s)\n", status.Stage, status.Customer)

	if err := tc.SignalWorkflow(ctx, wr.GetID(), wr.GetRunID(), onboarding.SignalApprove, ap); err != nil {
		return fmt.Errorf("signal %s: %w", onboarding.SignalApprove, err)
	}
	fmt.Fprintf(stdout, "signalled %s\n", onboarding.SignalApprove)

	var res onboarding.Result
	if err := wr.Get(ctx, &res); err != nil {
		return fmt.Errorf("workflow %s: %w", wr.GetID(), err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "result: %s\n", out)
	return nil
}

// emailSearchAttribute returns the Keyword search attribute attr set to
// the blind-index token of email (field "email"), computed here, outside
// workflow code, with the keyring's index keys. It returns none when attr
// is empty or not registered in the namespace.
func emailSearchAttribute(ctx context.Context, tc client.Client, env *codecenv.Env, attr, email string, logger *slog.Logger) (temporal.SearchAttributes, error) {
	if attr == "" {
		return temporal.SearchAttributes{}, nil
	}
	sa, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: env.Namespace})
	if _, ok := sa.GetCustomAttributes()[attr]; err != nil || !ok || env.IndexKeys == nil {
		logger.Warn("the workflow gets no e-mail search token: the search attribute is not registered (temporal operator search-attribute create --name "+attr+" --type Keyword) or the keyring has no index keys",
			"attribute", attr, "err", err)
		return temporal.SearchAttributes{}, nil
	}
	ix, err := blindindex.New(env.IndexKeys, blindindex.Options{})
	if err != nil {
		return temporal.SearchAttributes{}, err
	}
	upd, err := ix.Attribute(ctx, env.Namespace, "email", temporal.NewSearchAttributeKeyKeyword(attr), email)
	if err != nil {
		return temporal.SearchAttributes{}, err
	}
	return temporal.NewSearchAttributes(upd), nil
}

// queryStatus asks the workflow for its status. A query needs a worker to
// answer, so it retries until ctx ends while the worker is not there yet.
func queryStatus(ctx context.Context, tc client.Client, wr client.WorkflowRun) (onboarding.Status, error) {
	var last error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := tc.QueryWorkflow(qctx, wr.GetID(), wr.GetRunID(), onboarding.QueryStatus)
		cancel()
		if err == nil {
			var s onboarding.Status
			if err := v.Get(&s); err != nil {
				return s, fmt.Errorf("query %s: %w", onboarding.QueryStatus, err)
			}
			return s, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return onboarding.Status{}, fmt.Errorf("query %s: %w", onboarding.QueryStatus, errors.Join(ctx.Err(), last))
		case <-time.After(wait):
		}
	}
}
