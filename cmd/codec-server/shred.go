package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring/subject"
)

const shredUsage = `Usage:
  codec-server keys shred --subject ID --subject-store dir|vault [--by WHO] [store and keyring flags]

Deletes the data subject's key for good: every payload sealed for the subject
becomes unreadable (codec.ErrErased), in histories, archives and backups of
them. Writes an audit line (JSON) to stderr or --audit-log. See docs/ERASURE.md.
`

// runShred implements `codec-server keys shred`.
func runShred(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("codec-server keys shred", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, shredUsage); fs.PrintDefaults() }
	id := fs.String("subject", "", "the data subject whose key to shred")
	auditPath := fs.String("audit-log", "", "append the audit line to this file instead of stderr")
	by := fs.String("by", "", "who asks for the erasure, for the audit line (default: $USER, else the uid)")
	keys := keyconfig.Default()
	keys.Register(fs)
	if code, ok := parseCommand(fs, args, lookup, stderr); !ok {
		return code
	}
	switch {
	case *id == "":
		fmt.Fprintln(stderr, "codec-server keys shred: --subject is required (see codec-server keys shred --help)")
		return 2
	case keys.Subjects.Store == "":
		fmt.Fprintln(stderr, "codec-server keys shred: --subject-store is required: dir or vault (see codec-server keys shred --help)")
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "codec-server keys shred: unexpected argument %q (see codec-server keys shred --help)\n", fs.Arg(0))
		return 2
	}
	if err := keys.ValidateSubjects(); err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 2
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, closer, err := keys.OpenSubjectStore(ctx, logger)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 1
	}
	defer closer.Close()
	var w io.Writer = stderr
	if *auditPath != "" {
		f, err := os.OpenFile(*auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys shred:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	who := *by
	if who == "" {
		who = whoAmI(lookup)
	}
	audit := slog.New(slog.NewJSONHandler(w, nil)).With("log", "audit")
	existed, err := subject.Shred(ctx, store, *id, who, audit)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server keys shred:", err)
		return 1
	}
	if !existed {
		fmt.Fprintf(stdout, "data subject %s had no key in the %s store; nothing to shred\n", *id, store.Name())
		return 0
	}
	fmt.Fprintf(stdout, "shredded the key of data subject %s in the %s store; its payloads are erased\n", *id, store.Name())
	return 0
}

// whoAmI names the user running the command for an audit line: $USER, or
// "uid N" when it is unset (a container, cron).
func whoAmI(lookup func(string) (string, bool)) string {
	if u, ok := lookup("USER"); ok && u != "" {
		return u
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
