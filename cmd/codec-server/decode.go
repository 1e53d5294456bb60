package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/codecserver"
	"github.com/envelopecodec/envelope/keyconfig"
)

const decodeUsage = `Usage:
  codec-server decode [flags] [FILE]

Reads the output of 'temporal workflow show -o json' (or -o jsonl, or any
JSON holding Temporal payloads) from FILE, or from standard input when FILE
is missing or "-", and prints it with every payload decoded: for incident
work without a running codec server. The default view shows JSON payloads
as their values, as the temporal CLI's text views do; -o json prints the
decoded payloads in exact protojson (base64 data), for tools. The keyring
flags are the server's (--keys-file, --vault-*, --subject-* and their
environment variables); it decodes through the server's codec chain, so a
payload of an erased data subject shows as the server shows it.

Exit status: 0 when every payload decoded, 1 when the input or a payload
could not be read (nothing is printed then), 2 for bad usage.

Flags:
`

// runDecode implements `codec-server decode [flags] [FILE]`.
func runDecode(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := commandFlags("codec-server decode", decodeUsage, stderr)
	nsFlag := namespaceFlag(fs, lookup, "namespace the history comes from: envelope/v2 payloads sealed for another namespace fail; $TEMPORAL_NAMESPACE when set")
	view := viewText
	fs.StringVar(&view, "output", view, "text: JSON payloads shown as their values; json: exact protojson, data in base64 (for tools)")
	fs.StringVar(&view, "o", view, "short for --output")
	zlib := fs.Bool("zlib", true, "decompress binary/zlib payloads too, as the server's --zlib (--zlib=false turns it off)")
	keys := keyconfig.Default()
	keys.Register(fs)
	if code, ok := parseCommand(fs, args, lookup, stderr); !ok {
		return code
	}
	ns := *nsFlag
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "codec-server decode: one input file at most, got %d\n", fs.NArg())
		return 2
	}
	if err := checkView(view); err != nil {
		fmt.Fprintln(stderr, "codec-server decode:", err)
		return 2
	}
	if keys.Source() == "" {
		fmt.Fprintf(stderr, "codec-server decode: no keyring: pass --keys-file F (or set %s) or --vault-addr\n", keyconfig.EnvName("keys-file"))
		return 2
	}
	name := "standard input"
	in := stdin
	if p := fs.Arg(0); p != "" && p != "-" {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server decode:", oneLine(err))
			return 1
		}
		defer f.Close()
		name, in = p, f
	}
	keys.File.Reload = 0 // one pass: no watching
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opened, err := keys.Open(ctx, logger)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server decode:", err)
		return 1
	}
	defer opened.Close()
	codecs, err := codecChain(opened.Keyring, codec.Options{Namespace: ns}, *zlib)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server decode:", err)
		return 1
	}
	var out bytes.Buffer
	if err := decodeDocuments(ctx, in, &out, codecs); err != nil {
		fmt.Fprintf(stderr, "codec-server decode: %s: %v\n", name, err)
		return 1
	}
	shown := out.Bytes()
	if view == viewText {
		if shown, err = readableDocuments(shown); err != nil {
			fmt.Fprintf(stderr, "codec-server decode: %s: %v\n", name, err)
			return 1
		}
	}
	if _, err := stdout.Write(shown); err != nil {
		fmt.Fprintln(stderr, "codec-server decode:", err)
		return 1
	}
	return 0
}

func oneLine(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

// foundPayload is a payload object in a JSON document and where it is.
type foundPayload struct {
	obj  map[string]any
	path string
}

// decodeDocuments decodes every JSON value in r (one document, or JSON
// lines) and writes each, indented, to w.
func decodeDocuments(ctx context.Context, r io.Reader, w io.Writer, codecs []converter.PayloadCodec) error {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.UseNumber()
	n := 0
	for {
		var doc any
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("not JSON (syntax error at byte %d); want the output of temporal workflow show -o json", se.Offset)
			}
			return fmt.Errorf("not JSON (%v); want the output of temporal workflow show -o json", err)
		}
		n++
		var found []foundPayload
		collectPayloads(doc, "", &found)
		if err := decodeFound(ctx, found, codecs); err != nil {
			return err
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		w.Write(append(b, '\n'))
	}
	if n == 0 {
		return errors.New("empty input; want the output of temporal workflow show -o json")
	}
	return nil
}

// collectPayloads finds the objects that look like Temporal payloads: a
// "metadata" object with an "encoding".
func collectPayloads(v any, path string, out *[]foundPayload) {
	switch v := v.(type) {
	case map[string]any:
		if md, ok := v["metadata"].(map[string]any); ok {
			if _, ok := md["encoding"]; ok {
				*out = append(*out, foundPayload{obj: v, path: path})
				return
			}
		}
		for k, c := range v {
			collectPayloads(c, path+"."+k, out)
		}
	case []any:
		for i, c := range v {
			collectPayloads(c, path+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// decodeFound decodes the payloads in one batch and writes them back into
// their objects. When the batch fails, it decodes them one by one to name
// the first payload that fails.
func decodeFound(ctx context.Context, found []foundPayload, codecs []converter.PayloadCodec) error {
	if len(found) == 0 {
		return nil
	}
	ps := make([]*commonpb.Payload, len(found))
	for i, f := range found {
		b, err := json.Marshal(f.obj)
		if err != nil {
			return err
		}
		ps[i] = &commonpb.Payload{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, ps[i]); err != nil {
			return fmt.Errorf("payload at %s: not a payload in protojson", trimPath(f.path))
		}
	}
	out, err := decodeChain(ctx, codecs, ps)
	if err != nil {
		for i, p := range ps {
			if _, err1 := decodeChain(ctx, codecs, []*commonpb.Payload{p}); err1 != nil {
				return fmt.Errorf("payload at %s: %w", trimPath(found[i].path), err1)
			}
		}
		return err
	}
	for i, f := range found {
		b, err := protojson.Marshal(out[i])
		if err != nil {
			return err
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return err
		}
		clear(f.obj)
		for k, v := range m {
			f.obj[k] = v
		}
	}
	return nil
}

func trimPath(p string) string {
	if len(p) > 0 && p[0] == '.' {
		return p[1:]
	}
	if p == "" {
		return "(top level)"
	}
	return p
}

// decodeChain decodes with codecs as the server does (codecserver.Decode).
func decodeChain(ctx context.Context, codecs []converter.PayloadCodec, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, _, err := codecserver.Decode(ctx, codecs, ps)
	return out, err
}
