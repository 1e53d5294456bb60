package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/keyconfig"
)

const blindIndexUsage = `Usage:
  codec-server blind-index [flags] --field NAME VALUE
  codec-server blind-index [flags] --field NAME -      (VALUE read from standard input)

Prints the blind-index tokens of VALUE for the field NAME in the namespace:
one line per index key version the keyring still holds, newest first. With
--attribute ATTR it prints instead the visibility query clause
ATTR IN ('t1', 't2') that finds workflows of every key version:

  temporal workflow list --query "$(codec-server blind-index --field email --attribute CustomerEmailIdx ada@example.com)"

The value is normalised as the workers do (--normalize; by default e-mails
for the field "email", names for "name", digits for "phone", trimmed for any
other). Pass "-" to read it from standard input, which keeps it out of the
process list and shell history; it never appears in logs or errors. A value
starting with '-' goes after "--". The
keyring flags are the server's (--keys-file, --vault-*, and their
environment variables). See docs/SEARCH.md.

Exit status: 0 on success, 1 when the keyring or the value was refused, 2
for bad usage.

Flags:
`

// runBlindIndex implements `codec-server blind-index`.
func runBlindIndex(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := commandFlags("codec-server blind-index", blindIndexUsage, stderr)
	nsFlag := namespaceFlag(fs, lookup, "Temporal namespace of the workflows; $TEMPORAL_NAMESPACE when set")
	field := fs.String("field", "", "name of the indexed field, as the workers use it (required)")
	attribute := fs.String("attribute", "", "print the query clause for this Keyword search attribute instead of the tokens")
	normalize := fs.String("normalize", "", "normaliser: trim, email, name or phone (default: the field's standard one)")
	bits := fs.Int("bits", blindindex.DefaultBits, "token length in bits, as the workers use it for the field")
	keys := keyconfig.Default()
	keys.Register(fs)
	if hasUnknownFlag(fs, args) {
		// The flag package would quote it, and it may be the value.
		fmt.Fprintln(stderr, "codec-server blind-index: an argument starting with '-' is not a flag of this command (not shown: it may be the value; put VALUE after --)")
		return 2
	}
	if code, ok := parseCommand(fs, args, lookup, stderr); !ok {
		return code
	}
	ns := *nsFlag
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "codec-server blind-index:", msg)
		return 2
	}
	switch {
	case *field == "":
		return usage("--field is required")
	case fs.NArg() != 1:
		// Do not print the arguments: they may hold the value.
		return usage(fmt.Sprintf("want exactly one VALUE (or - for standard input), got %d arguments", fs.NArg()))
	case keys.Source() == "":
		return usage(fmt.Sprintf("no keyring: pass --keys-file F (or set %s) or --vault-addr", keyconfig.EnvName("keys-file")))
	}
	f := blindindex.Field{Bits: *bits}
	if *normalize != "" {
		n, ok := blindindex.NormalizerByName(*normalize)
		if !ok {
			return usage(fmt.Sprintf("--normalize %q: want trim, email, name or phone", *normalize))
		}
		f.Normalize = n
	}
	value := fs.Arg(0)
	if value == "-" {
		const maxValue = 64 << 10
		line, err := bufio.NewReader(io.LimitReader(stdin, maxValue+1)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "codec-server blind-index: read standard input:", err)
			return 1
		}
		if len(strings.TrimRight(line, "\r\n")) > maxValue {
			// A token of the first 64 KiB would find nothing, silently.
			fmt.Fprintf(stderr, "codec-server blind-index: the value on standard input is longer than %d bytes\n", maxValue)
			return 1
		}
		value = strings.TrimRight(line, "\r\n")
	}
	keys.File.Reload = 0 // one pass: no watching
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opened, err := keys.Open(ctx, logger)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server blind-index:", err)
		return 1
	}
	defer opened.Close()
	ik, err := opened.IndexKeys()
	if err != nil {
		fmt.Fprintln(stderr, "codec-server blind-index:", err)
		return 1
	}
	ix, err := blindindex.New(ik, blindindex.Options{Fields: map[string]blindindex.Field{*field: f}})
	if err != nil {
		return usage(err.Error())
	}
	var out string
	if *attribute != "" {
		out, err = ix.Query(ctx, ns, *field, *attribute, value)
	} else {
		var ts []string
		ts, err = ix.QueryTokens(ctx, ns, *field, value)
		out = strings.Join(ts, "\n")
	}
	if err != nil {
		fmt.Fprintln(stderr, "codec-server blind-index:", err)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

// hasUnknownFlag reports whether args, before "--", hold an argument that
// looks like a flag fs does not define (a value of its own flag excepted).
func hasUnknownFlag(fs *flag.FlagSet, args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return false
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "h" || name == "help" {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			return true
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			i++ // the flag's value
		}
	}
	return false
}
