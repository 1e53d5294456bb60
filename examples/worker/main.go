// Command worker runs the example onboarding workflow and its activity with
// the envelope codec: everything it sends to Temporal is sealed.
//
// Connection settings come from the Temporal environment (TEMPORAL_ADDRESS,
// TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, or a profile of the
// Temporal config file); keyring settings from the codec server's flags and
// variables (--keys-file, --vault-*; with neither, the development key file
// .data/dev-keyring.json). It runs until interrupted.
//
//	go run ./examples/worker --keys-file keys.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/worker"

	"github.com/envelopecodec/envelope/examples/internal/exampleenv"
	"github.com/envelopecodec/envelope/examples/internal/onboarding"
	"github.com/envelopecodec/envelope/internal/version"
)

func main() {
	err := run(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if version.Requested(args) {
		fmt.Println(version.String("worker"))
		return nil
	}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	keys.Subject = onboarding.DataSubject
	taskQueue := fs.String("task-queue", onboarding.DefaultTaskQueue, "task queue to poll")
	exampleenv.SetUsage(fs, "worker runs the example onboarding workflow and activity; every payload it sends to Temporal is sealed by the envelope codec.")
	if err := exampleenv.Parse(fs, args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, closeKeys, err := keys.Dial(ctx, logger)
	if err != nil {
		return err
	}
	defer closeKeys.Close()
	defer c.Close()

	w := worker.New(c, *taskQueue, worker.Options{})
	w.RegisterWorkflow(onboarding.Onboard)
	w.RegisterActivity(onboarding.CheckCustomer)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	logger.Info("worker started", "task_queue", *taskQueue)
	<-ctx.Done()
	w.Stop()
	logger.Info("worker stopped")
	return nil
}
