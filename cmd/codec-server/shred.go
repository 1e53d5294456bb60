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
        [--reference TICKET] [--record-subject] [--by WHO] [--audit-log F] [store and keyring flags]

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
	c := newStoreCommand("init-subject-store", initStoreUsage, stderr)
	if code, ok := c.parse(args, lookup); !ok {
		return code
	}
	st, closer, code := c.open(context.Background(), true, nil)
	if code != 0 {
		return code
	}
	defer closer.Close()
	fmt.Fprintf(stdout, "created the %s data subject key store %s\n", st.Name(), st.ID())
	return 0
}

// runShred implements `codec-server keys shred` and `keys readmit`.
func runShred(cmd string, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	c := newStoreCommand(cmd, shredUsage, stderr)
	fs := c.fs
	ns := fs.String("namespace", "", "the namespace whose key of the data subject to "+cmd+" (required)")
	id := fs.String("subject", "", "the data subject ID (case-insensitive)")
	ref := fs.String("reference", "", "your reference for the request (e.g. TICKET-123), written to the audit line")
	record := fs.Bool("record-subject", false, "also write the subject ID into the audit line (off: only its handle)")
	auditPath := fs.String("audit-log", "", "append the audit line to this file instead of stderr")
	by := fs.String("by", "", "who asks, for the audit line (default: $USER, else the uid)")
	if code, ok := c.parse(args, lookup); !ok {
		return code
	}
	switch {
	case *ns == "":
		return c.usageError("--namespace is required: a data subject's keys belong to a namespace")
	case *id == "":
		return c.usageError("--subject is required")
	}
	ctx := context.Background()
	store, closer, code := c.open(ctx, false, func() error { return keyring.ValidSubject(*id) })
	if code != 0 {
		return code
	}
	defer closer.Close()
	var w io.Writer = stderr
	if *auditPath != "" {
		f, err := os.OpenFile(*auditPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return c.fail(1, err)
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
			return c.fail(1, err)
		case !was:
			fmt.Fprintf(stdout, "data subject handle %s in namespace %s was not shredded; nothing to re-admit\n", h, *ns)
		default:
			fmt.Fprintf(stdout, "re-admitted data subject handle %s in namespace %s: sealing for it creates a new key; its shredded payloads stay erased\n", h, *ns)
		}
		return 0
	}
	h, existed, err := subject.Shred(ctx, store, req, audit)
	if err != nil {
		return c.fail(1, err)
	}
	if !existed {
		fmt.Fprintf(stdout, "data subject handle %s had no key in namespace %s of the %s store; nothing to shred (sealing for it stays blocked until readmit)\n", h, *ns, store.Name())
		return 0
	}
	fmt.Fprintf(stdout, "shredded the key of data subject handle %s in namespace %s of the %s store; its payloads are erased\n", h, *ns, store.Name())
	return 0
}

// storeCommand is a keys subcommand that works on the data subject key
// store (init-subject-store, shred, readmit): its flag set, the keyring's
// and the store's settings, and how it says a problem.
type storeCommand struct {
	name   string // "codec-server keys shred"
	fs     *flag.FlagSet
	keys   keyconfig.Config
	stderr io.Writer
}

func newStoreCommand(cmd, usage string, stderr io.Writer) *storeCommand {
	name := "codec-server keys " + cmd
	return &storeCommand{name: name, fs: commandFlags(name, usage, stderr), keys: keyconfig.Default(), stderr: stderr}
}

// parse registers the keyring's and the store's flags after the command's
// own (so that --help names the environment twins of all of them) and
// parses args with [parseCommand].
func (c *storeCommand) parse(args []string, lookup func(string) (string, bool)) (code int, ok bool) {
	c.keys.Register(c.fs)
	return parseCommand(c.fs, args, lookup, c.stderr)
}

// usageError says what is wrong with the command line in one line that
// points at --help, and returns exit status 2.
func (c *storeCommand) usageError(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s (see %s --help)\n", c.name, fmt.Sprintf(format, a...), c.name)
	return 2
}

// fail says err in one line naming the command and returns code.
func (c *storeCommand) fail(code int, err error) int {
	fmt.Fprintln(c.stderr, c.name+":", err)
	return code
}

// open checks the store settings (--subject-store given, no argument left
// over, keyconfig's ValidateSubjects, then check unless nil) and opens the
// store, or with create creates it. When it cannot, it says why in one
// line and returns the exit status: 2 for usage, 1 for a store that does
// not open. Else code is 0 and the caller closes closer.
func (c *storeCommand) open(ctx context.Context, create bool, check func() error) (st subject.Store, closer io.Closer, code int) {
	switch {
	case c.keys.Subjects.Store == "":
		return nil, nil, c.usageError("--subject-store is required: dir or vault")
	case c.fs.NArg() > 0:
		// Not quoted: a stray argument may be (part of) a data subject ID.
		return nil, nil, c.usageError("%d unexpected arguments (not shown: they may hold a data subject ID; quote an ID with spaces)", c.fs.NArg())
	}
	if err := c.keys.ValidateSubjects(); err != nil {
		return nil, nil, c.fail(2, err)
	}
	if check != nil {
		if err := check(); err != nil {
			return nil, nil, c.fail(2, err)
		}
	}
	open := c.keys.OpenSubjectStore
	if create {
		open = c.keys.InitSubjectStore
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, closer, err := open(ctx, logger)
	if err != nil {
		return nil, nil, c.fail(1, err)
	}
	return st, closer, 0
}

// whoAmI names the user running the command for an audit line: $USER, or
// "uid N" when it is unset (a container, cron).
func whoAmI(lookup func(string) (string, bool)) string {
	if u, ok := lookup("USER"); ok && u != "" {
		return u
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
