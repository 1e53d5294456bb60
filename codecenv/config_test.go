package codecenv_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestLoadRefusesSubjectWithoutStore: a codec told how to find a
// payload's data subject but given no store of subject keys fails at Load,
// naming the setting, not at the first workflow start.
func TestLoadRefusesSubjectWithoutStore(t *testing.T) {
	t.Parallel()
	o := codecenv.Options{LookupEnv: lookup(map[string]string{"CODEC_SERVER_KEYS_FILE": keyFile(t)})}
	o.Temporal.DisableFile = true
	o.Codec.Subject = func(converter.SerializationContext) string { return "customer-1" }
	e, err := codecenv.Load(context.Background(), o)
	if err == nil {
		e.Close()
		t.Fatal("Load succeeded; want an error naming CODEC_SERVER_SUBJECT_STORE")
	}
	if !strings.Contains(err.Error(), "CODEC_SERVER_SUBJECT_STORE") {
		t.Errorf("error %q does not name CODEC_SERVER_SUBJECT_STORE", err)
	}
}

// TestLoadTakesAConfig: a program that filled a keyconfig.Config from its
// own flags passes it; the environment's keyring settings are not read.
func TestLoadTakesAConfig(t *testing.T) {
	t.Parallel()
	cfg := keyconfig.Default()
	cfg.File.Path = keyFile(t)
	cfg.Subjects = keyconfig.Subjects{Store: "dir", Dir: filepath.Join(t.TempDir(), "s")}
	if _, err := subject.InitDir(cfg.Subjects.Dir); err != nil {
		t.Fatal(err)
	}
	o := codecenv.Options{Keys: &cfg, LookupEnv: lookup(map[string]string{"CODEC_SERVER_KEYS_FILE": "/nonexistent.json"})}
	o.Temporal.DisableFile = true
	e, err := codecenv.Load(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.KeyringSource != "file" || !strings.Contains(e.Keyring, cfg.File.Path) || !strings.Contains(e.Keyring, "dir store") {
		t.Errorf("source %q, keys %q", e.KeyringSource, e.Keyring)
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}}
	if _, err := e.Codec.ForSubject("customer-1").Encode(in); err != nil {
		t.Errorf("seal for a subject: %v", err)
	}
}
