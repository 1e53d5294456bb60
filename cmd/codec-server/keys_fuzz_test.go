package main

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReadStaticKey checks that the static key reader of `keys add-legacy`
// never panics, accepts only 32-byte keys, and never quotes its input in
// an error.
func FuzzReadStaticKey(f *testing.F) {
	f.Add([]byte("test-key-test-key-test-key-test!"))
	f.Add([]byte("test-key-test-key-test-key-test!\n"))
	f.Add([]byte("dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdCE=\n"))
	f.Add([]byte("746573742d6b65792d746573742d6b65792d746573742d6b65792d7465737421"))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := readStaticKey("", bytes.NewReader(data))
		if err != nil {
			if len(data) >= 8 && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(k) != 32 {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}
