// Command codec-server serves the envelope codec over HTTP for the
// Temporal Web UI, the temporal CLI and remote SDK clients.
//
//	codec-server [flags]                      serve (see --help and docs/SERVER.md)
//	codec-server keys new|add|promote|rotate|retire|add-legacy|list  manage a local key file
//	codec-server healthcheck [--url URL]      GET /healthz; exit 1 unless 200
//	codec-server decode [flags] [FILE]        decode the payloads of `temporal workflow show -o json` output
//	codec-server blind-index [flags] --field F VALUE  search tokens (or a query clause) for a value (docs/SEARCH.md)
//	codec-server --version                    module version and VCS revision
//
// With no flags it serves on 127.0.0.1:8081 with a development key file in
// .data/dev-keyring.json, CORS for the dev Web UI at http://localhost:8233,
// and no authentication (loopback only).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/envelopecodec/envelope/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// run dispatches subcommands and serves until SIGINT or SIGTERM. It
// returns the exit code.
func run(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if version.Requested(args) || len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, version.String("codec-server"))
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 {
		switch args[0] {
		case "keys":
			return runKeys(args[1:], stdout, stderr, lookup)
		case "healthcheck":
			return runHealthcheck(args[1:], stdout, stderr, lookup)
		case "decode":
			return runDecode(ctx, args[1:], os.Stdin, stdout, stderr, lookup)
		case "blind-index":
			return runBlindIndex(ctx, args[1:], os.Stdin, stdout, stderr, lookup)
		}
	}

	m := NewMain()
	m.Stdout, m.Stderr, m.LookupEnv = stdout, stderr, lookup
	if err := m.ParseFlags(ctx, args); err != nil {
		return usageExit("codec-server", err, stderr)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "codec-server:", err)
		m.Close()
		return 1
	}
	select {
	case <-ctx.Done():
		m.Logger().Info("signal received; shutting down")
		// A second SIGINT or SIGTERM cuts the drain short.
		again, stopAgain := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		stop()
		m.Drain(again)
		stopAgain()
	case err := <-m.Done():
		if err != nil {
			m.Logger().Error("server stopped", "err", err)
			m.Close()
			return 1
		}
	}
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(stderr, "codec-server: shutdown:", err)
		return 1
	}
	return 0
}
