package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/ownerfile"
	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring"
)

const keysUsage = `Usage:
  codec-server keys new --file F          create a key file with one fresh active key (mode 0600)
  codec-server keys add --file F          add a fresh decrypt-only key; distribute the file, then promote it
  codec-server keys promote ID --file F   make key ID the active key (new payloads are sealed under it)
  codec-server keys rotate --file F       add a fresh key and make it active at once (one server only)
  codec-server keys retire ID --file F    stop key ID decrypting; refused while it may still be in use
        [--force] [--data-key-max-age 1h] [--keys-reload 10s]
  codec-server keys add-legacy --id ID --file F [--key-file K]
                                          add the Temporal samples' static key (from K, or stdin;
                                          32 raw bytes, or their base64 or hex) under the samples'
                                          key ID (--id '' for their default empty ID); decrypt only
  codec-server keys list --file F         list key IDs, ages and states (never key material)
  codec-server keys init-subject-store --subject-store dir|vault ...
                                          create a data subject key store (docs/ERASURE.md)
  codec-server keys shred --namespace NS --subject ID --subject-store dir|vault ...
        [--reference TICKET] [--record-subject]
                                          delete a data subject's key in NS for good
  codec-server keys readmit --namespace NS --subject ID --subject-store dir|vault ...
                                          let a shredded data subject be sealed for again

--file defaults to $CODEC_SERVER_KEYS_FILE. The commands keep the file's
owner, group and mode, and refuse a file that group or others can write.
See docs/OPERATIONS.md for the staged rotation procedure.
`

// runKeys implements `codec-server keys <command> [ID] --file F`.
func runKeys(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	return runKeysWithInput(args, os.Stdin, stdout, stderr, lookup)
}

func runKeysWithInput(args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "shred", "readmit":
		return runShred(cmd, rest, stdout, stderr, lookup)
	case "init-subject-store":
		return runInitSubjectStore(rest, stdout, stderr, lookup)
	}
	fs := flag.NewFlagSet("codec-server keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	file := fs.String("file", "", "key file")
	var (
		force      *bool
		maxAge     *time.Duration
		reload     *time.Duration
		legacyID   *string
		legacyFile *string
	)
	wantID := false
	switch cmd {
	case "new", "add", "rotate", "list":
	case "promote":
		wantID = true
	case "retire":
		wantID = true
		force = fs.Bool("force", false, "retire even if the key was active within --data-key-max-age + --keys-reload")
		maxAge = fs.Duration("data-key-max-age", codec.DefaultDataKeyMaxAge, "the codec's DataKeyMaxAge in every process using the file")
		reload = fs.Duration("keys-reload", keyconfig.DefaultKeysReload, "the longest --keys-reload of any process using the file")
	case "add-legacy":
		legacyID = fs.String("id", "", "the samples' key ID (may be empty, their default)")
		legacyFile = fs.String("key-file", "", "file holding the static key (default: read it from stdin)")
	default:
		fmt.Fprintf(stderr, "codec-server keys: unknown command %q\n%s", cmd, keysUsage)
		return 2
	}
	// Allow the key ID before or after the flags. It may be empty: the
	// samples' default legacy key ID is "" (`keys retire ''`).
	var id string
	haveID := false
	if wantID && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest, haveID = rest[0], rest[1:], true
	}
	if code, ok := parseCommand(fs, rest, nil, stderr); !ok {
		return code
	}
	if *file == "" {
		*file, _ = lookup(keyconfig.EnvName("keys-file"))
	}
	if wantID && !haveID && fs.NArg() == 1 {
		id, haveID = fs.Arg(0), true
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "codec-server keys %s: unexpected argument %q\n%s", cmd, fs.Arg(0), keysUsage)
		return 2
	}
	if *file == "" {
		fmt.Fprintf(stderr, "codec-server keys %s: no key file: pass --file F or set %s\n", cmd, keyconfig.EnvName("keys-file"))
		return 2
	}
	if wantID && !haveID {
		fmt.Fprintf(stderr, "codec-server keys %s: which key? pass its ID\n%s", cmd, keysUsage)
		return 2
	}
	idGiven := false
	fs.Visit(func(f *flag.Flag) { idGiven = idGiven || f.Name == "id" })
	if cmd == "add-legacy" && !idGiven {
		fmt.Fprintln(stderr, "codec-server keys add-legacy: --id is required (--id '' for the samples' default empty key ID)")
		return 2
	}
	if cmd != "new" {
		if err := keyconfig.CheckKeyFile("--file", *file); err != nil {
			fmt.Fprintf(stderr, "codec-server keys %s: %v\n", cmd, err)
			return 1
		}
	}

	now := time.Now()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "codec-server keys %s: %v\n", cmd, err)
		return 1
	}
	switch cmd {
	case "new":
		info, err := keyring.CreateFile(*file, now)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created %s with active key %s\n", *file, displayID(info))
	case "add":
		info, err := keyring.AddKey(*file, now)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "added decrypt-only key %s to %s; once every server and worker has reloaded the file, run: codec-server keys promote %s --file %s\n", displayID(info), *file, displayID(info), *file)
	case "promote":
		before, _ := keyring.ListFile(*file)
		info, err := keyring.PromoteKey(*file, fileKeyID(before, id), now)
		if err != nil {
			return fail(err)
		}
		for _, k := range before {
			if k.ID == info.ID && now.Sub(k.Created) < 2*keyconfig.DefaultKeysReload {
				fmt.Fprintf(stderr, "warning: key %s was added %s ago; processes that have not reloaded the file yet cannot decrypt what is sealed under it until they do\n", displayID(info), now.Sub(k.Created).Round(time.Second))
			}
		}
		fmt.Fprintf(stdout, "key %s is now active in %s; new payloads are sealed under it once processes reload the file\n", displayID(info), *file)
	case "rotate":
		info, err := keyring.RotateFile(*file, now)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "added key %s to %s and made it active; older keys still decrypt\n", displayID(info), *file)
	case "retire":
		window := *maxAge + *reload
		before, _ := keyring.ListFile(*file)
		info, err := keyring.RetireKey(*file, fileKeyID(before, id), now, keyring.RetireOptions{Window: window, Force: *force})
		if err != nil {
			return fail(err)
		}
		if *force {
			fmt.Fprintf(stderr, "warning: --force: retired %s without waiting %s after it stopped being active; processes still sealing under it make payloads nobody can decrypt until the key is restored\n", displayID(info), window)
		}
		// What is true: each process stops using the key when it reloads
		// the file, and a decode cache keeps data keys it already unwrapped
		// for up to the codec's DecodeCacheMaxAge.
		fmt.Fprintf(stdout, "retired key %s in %s (the key material stays in the file): processes stop unwrapping data keys with it when they reload the file (--keys-reload, default %s), and keep decrypting payloads whose data keys they already cached for up to %s (the codec's decode cache)\n",
			displayID(info), *file, keyconfig.DefaultKeysReload, codec.DefaultDecodeCacheMaxAge)
	case "add-legacy":
		key, err := readStaticKey(*legacyFile, stdin)
		if err != nil {
			return fail(err)
		}
		info, err := keyring.AddLegacyKey(*file, *legacyID, key, now)
		clear(key)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "added legacy key %s to %s: it decrypts payloads the Temporal samples' codec sealed under that key ID, and never seals\n", displayID(info), *file)
	case "list":
		infos, err := keyring.ListFile(*file)
		if err != nil {
			return fail(err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tAGE\tSTATE")
		for _, k := range infos {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", displayID(k), k.Created.UTC().Format(time.RFC3339), age(now.Sub(k.Created)), state(k))
		}
		tw.Flush()
	}
	return 0
}

// fileKeyID turns the key ID a user typed into the ID in the key file:
// every command prints the ID payloads carry (local/2026-12-07-48e27b), and
// accepts that form and the bare one (2026-12-07-48e27b).
func fileKeyID(keys []keyring.KeyInfo, typed string) string {
	for _, k := range keys {
		if k.ID == typed {
			return typed
		}
	}
	for _, k := range keys {
		if k.FullID() == typed {
			return k.ID
		}
	}
	return typed
}

// displayID is the key ID payloads carry; the empty legacy ID is shown
// quoted.
func displayID(k keyring.KeyInfo) string {
	if id := k.FullID(); id != "" {
		return id
	}
	return strconv.Quote("")
}

func state(k keyring.KeyInfo) string {
	var s string
	switch {
	case k.Active:
		s = "active"
	case k.Legacy:
		s = "legacy (decrypt only)"
	default:
		s = "decrypt only"
	}
	if !k.Retired.IsZero() {
		s = "retired " + k.Retired.UTC().Format(time.RFC3339)
		if k.Legacy {
			s = "legacy, " + s
		}
	}
	return s
}

// maxStaticKeyInput bounds what add-legacy reads of a static key: its hex
// form with a line end is 66 bytes, so --key-file /dev/zero fails at once.
const maxStaticKeyInput = 4096

// readStaticKey reads a 32-byte key from path, or from stdin when path is
// empty or "-": 32 raw bytes, or base64 or hex of 32 bytes, with an
// optional trailing newline. Never from the command line, which other users
// can see.
func readStaticKey(path string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	if path == "" || path == "-" {
		if f, ok := stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				// A terminal: say what is awaited instead of hanging silently.
				fmt.Fprintln(os.Stderr, "codec-server keys add-legacy: paste the static key (raw, base64 or hex), then press Ctrl-D; or pass --key-file F")
			}
		}
		data, err = ownerfile.ReadAtMost(stdin, maxStaticKeyInput)
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			data, err = ownerfile.ReadAtMost(f, maxStaticKeyInput)
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read the static key: %w", err)
	}
	if len(data) == keyring.DataKeySize {
		return data, nil
	}
	// Every other form is key material too: wipe it once decoded.
	defer clear(data)
	trimmed := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
	if len(trimmed) == keyring.DataKeySize {
		return bytes.Clone(trimmed), nil
	}
	if k, err := base64.StdEncoding.DecodeString(string(trimmed)); err == nil && len(k) == keyring.DataKeySize {
		return k, nil
	}
	if k, err := hex.DecodeString(string(trimmed)); err == nil && len(k) == keyring.DataKeySize {
		return k, nil
	}
	return nil, fmt.Errorf("the static key must be %d bytes, or their base64 or hex (got %d bytes that are neither)", keyring.DataKeySize, len(trimmed))
}

func age(d time.Duration) string {
	switch {
	case d < time.Hour:
		return d.Round(time.Minute).String()
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
