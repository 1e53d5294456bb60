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
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

const shredUsage = `Usage:
  codec-server keys shred --namespace NS --subject ID --subject-store dir|vault
        [--reference TICKET] [--record-subject] [--by WHO] [--audit-log F] [store and keyring flags]
  codec-server keys readmit --namespace NS --subject ID --subject-store dir|vault
        [--reference TICKET] [--record-subject] [--audit-log F] [store and keyring flags]

shred deletes the data subject's key in namespace NS for good and leaves a
tombstone: every payload sealed for the subject in NS becomes unreadable
(codec.ErrErased), in histories, archives and backups of them, and sealing
for the subject fails until readmit. Other namespaces are untouched.
Both write an audit line (JSON) to stderr or --audit-log naming the
subject's handle (never the subject ID, unless --record-subject). See
docs/ERASURE.md.
`

const initStoreUsage = `Usage:
  codec-server keys init-subject-store --subject-store dir|vault [store and keyring flags]

Creates a data subject key store, once: for dir, the folder (mode 0700,
empty if it exists) and its identity file; for vault, the store's transit
key <prefix>store. Servers and workers refuse to start on a folder or mount
that is not an initialised store. See docs/ERASURE.md.
`

// runInitSubjectStore implements `codec-server keys init-subject-store`.
func runInitSubjectStore(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	const name = "codec-server keys init-subject-store"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, initStoreUsage); fs.PrintDefaults() }
	keys := keyconfig.Default()
	keys.Register(fs)
	if code, ok := parseCommand(fs, args, lookup, stderr); !ok {
		return code
	}
	switch {
	case keys.Subjects.Store == "":
		fmt.Fprintf(stderr, "%s: --subject-store is required: dir or vault (see %s --help)\n", name, name)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see %s --help)\n", name, fs.Arg(0), name)
		return 2
	}
	if err := keys.ValidateSubjects(); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, closer, err := keys.InitSubjectStore(ctx, logger)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	defer closer.Close()
	fmt.Fprintf(stdout, "created the %s data subject key store %s\n", st.Name(), st.ID())
	return 0
}

// runShred implements `codec-server keys shred` and `keys readmit`.
func runShred(cmd string, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	name := "codec-server keys " + cmd
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, shredUsage); fs.PrintDefaults() }
	ns := fs.String("namespace", "", "the namespace whose key of the data subject to "+cmd+" (required)")
	id := fs.String("subject", "", "the data subject ID (case-insensitive)")
	ref := fs.String("reference", "", "your reference for the request (e.g. TICKET-123), written to the audit line")
	record := fs.Bool("record-subject", false, "also write the subject ID into the audit line (off: only its handle)")
	auditPath := fs.String("audit-log", "", "append the audit line to this file instead of stderr")
	by := fs.String("by", "", "who asks, for the audit line (default: $USER, else the uid)")
	keys := keyconfig.Default()
	keys.Register(fs)
	if code, ok := parseCommand(fs, args, lookup, stderr); !ok {
		return code
	}
	switch {
	case *ns == "":
		fmt.Fprintf(stderr, "%s: --namespace is required: a data subject's keys belong to a namespace (see %s --help)\n", name, name)
		return 2
	case *id == "":
		fmt.Fprintf(stderr, "%s: --subject is required (see %s --help)\n", name, name)
		return 2
	case keys.Subjects.Store == "":
		fmt.Fprintf(stderr, "%s: --subject-store is required: dir or vault (see %s --help)\n", name, name)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see %s --help)\n", name, fs.Arg(0), name)
		return 2
	}
	if err := keys.ValidateSubjects(); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	if err := keyring.ValidSubject(*id); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, closer, err := keys.OpenSubjectStore(ctx, logger)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	defer closer.Close()
	var w io.Writer = stderr
	if *auditPath != "" {
		f, err := os.OpenFile(*auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintln(stderr, name+":", err)
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
	req := subject.Request{Namespace: *ns, Subject: *id, By: who, Reference: *ref, RecordSubject: *record}
	if cmd == "readmit" {
		h, was, err := subject.Readmit(ctx, store, req, audit)
		switch {
		case err != nil:
			fmt.Fprintln(stderr, name+":", err)
			return 1
		case !was:
			fmt.Fprintf(stdout, "data subject handle %s in namespace %s was not shredded; nothing to re-admit\n", h, *ns)
		default:
			fmt.Fprintf(stdout, "re-admitted data subject handle %s in namespace %s: sealing for it creates a new key; its shredded payloads stay erased\n", h, *ns)
		}
		return 0
	}
	h, existed, err := subject.Shred(ctx, store, req, audit)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	if !existed {
		fmt.Fprintf(stdout, "data subject handle %s had no key in namespace %s of the %s store; nothing to shred (sealing for it stays blocked until readmit)\n", h, *ns, store.Name())
		return 0
	}
	fmt.Fprintf(stdout, "shredded the key of data subject handle %s in namespace %s of the %s store; its payloads are erased\n", h, *ns, store.Name())
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
