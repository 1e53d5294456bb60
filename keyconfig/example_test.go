package keyconfig_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// A program without flags of its own reads the codec server's variables
// and opens the keys they describe. (The key file here is made up for the
// example and never for real data.)
func ExampleFromEnv() {
	dir, _ := os.MkdirTemp("", "keyconfig-example")
	defer os.RemoveAll(dir)
	keys := filepath.Join(dir, "keys.json")
	keyring.CreateFile(keys, time.Now())
	subject.InitDir(filepath.Join(dir, "subjects")) // once: codec-server keys init-subject-store

	env := map[string]string{
		"CODEC_SERVER_KEYS_FILE":     keys,
		"CODEC_SERVER_SUBJECT_STORE": "dir",
		"CODEC_SERVER_SUBJECT_DIR":   filepath.Join(dir, "subjects"),
	}
	cfg, err := keyconfig.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	opened, err := cfg.Open(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer opened.Close()
	_, subjects := opened.Keyring.(keyring.SubjectKeyring)
	fmt.Println(opened.Source, subjects)
	// Output: file true
}
