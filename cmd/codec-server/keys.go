package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/envelopecodec/envelope/internal/keyflags"
	"github.com/envelopecodec/envelope/keyring"
)

const keysUsage = `Usage:
  codec-server keys new --file F     create a key file with one fresh key (mode 0600)
  codec-server keys rotate --file F  add a fresh key and make it active; old keys stay
  codec-server keys list --file F    list key IDs, ages and the active key (never key material)
  codec-server keys shred --subject ID --subject-store dir|vault ...
                                     delete a data subject's key for good (docs/ERASURE.md)

--file defaults to $CODEC_SERVER_KEYS_FILE.
`

// runKeys implements `codec-server keys new|rotate|list --file F`.
func runKeys(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := args[0]
	if cmd == "shred" {
		return runShred(args[1:], stdout, stderr, lookup)
	}
	fs := flag.NewFlagSet("codec-server keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	file := fs.String("file", "", "key file")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *file == "" {
		*file, _ = lookup(keyflags.EnvName("keys-file"))
	}
	if *file == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	now := time.Now()
	switch cmd {
	case "new":
		info, err := keyring.CreateFile(*file, now)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys new:", err)
			return 1
		}
		fmt.Fprintf(stdout, "created %s with active key %s\n", *file, info.ID)
	case "rotate":
		info, err := keyring.RotateFile(*file, now)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys rotate:", err)
			return 1
		}
		fmt.Fprintf(stdout, "added key %s to %s and made it active; older keys still decrypt\n", info.ID, *file)
	case "list":
		infos, err := keyring.ListFile(*file)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server keys list:", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tAGE\tACTIVE")
		for _, k := range infos {
			active := ""
			if k.Active {
				active = "yes"
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\n", keyring.FileKeyIDPrefix, k.ID, k.Created.UTC().Format(time.RFC3339), age(now.Sub(k.Created)), active)
		}
		tw.Flush()
	default:
		fmt.Fprintf(stderr, "codec-server keys: unknown command %q\n%s", cmd, keysUsage)
		return 2
	}
	return 0
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
