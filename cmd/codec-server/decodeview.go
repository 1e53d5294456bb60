package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The views `codec-server decode --output` prints.
const (
	// viewText prints every payload a person can read as its value, as the
	// temporal CLI's text views (workflow show --detailed, describe) do.
	viewText = "text"
	// viewJSON prints the decoded payloads in exact protojson (metadata and
	// data in base64), as `temporal workflow show -o json` does: for tools.
	viewJSON = "json"
)

// checkView returns an error naming the accepted values when v is not a view.
func checkView(v string) error {
	if v != viewText && v != viewJSON {
		return fmt.Errorf("--output %q: want %s or %s", v, viewText, viewJSON)
	}
	return nil
}

// readableDocuments rewrites decoded documents (the protojson output of
// decodeDocuments, one indented JSON value after another) into the text
// view: a payload whose encoding is json/plain or json/protobuf becomes its
// JSON value, a binary/null payload becomes null, and any other payload
// (binary/plain, a payload still sealed) stays in protojson. HTML
// characters are not escaped: "<ada@example.com>" reads as written.
func readableDocuments(protoJSON []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(protoJSON))
	dec.UseNumber()
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	for {
		var doc any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		} else if err != nil {
			return nil, fmt.Errorf("text view: %w", err)
		}
		if err := enc.Encode(readableValue(doc)); err != nil {
			return nil, fmt.Errorf("text view: %w", err)
		}
	}
}

// readableValue returns v with every payload object in it replaced by what
// payloadValue shows for it.
func readableValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if md, ok := v["metadata"].(map[string]any); ok {
			if _, ok := md["encoding"]; ok {
				if shown, ok := payloadValue(v, md); ok {
					return shown
				}
				return v
			}
		}
		out := make(map[string]any, len(v))
		for k, c := range v {
			out[k] = readableValue(c)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, c := range v {
			out[i] = readableValue(c)
		}
		return out
	}
	return v
}

// payloadValue returns the value a JSON payload holds, and false for a
// payload that is not JSON (or whose data does not parse as JSON).
func payloadValue(p, md map[string]any) (any, bool) {
	enc, _ := base64Field(md["encoding"])
	switch string(enc) {
	case "binary/null":
		return nil, true
	case "json/plain", "json/protobuf":
	default:
		return nil, false
	}
	data, ok := base64Field(p["data"])
	if !ok {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var val any
	if err := d.Decode(&val); err != nil || d.More() {
		return nil, false
	}
	return val, true
}

// base64Field decodes a protojson bytes field; a missing field is empty.
func base64Field(v any) ([]byte, bool) {
	if v == nil {
		return nil, true
	}
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}
