package exampleenv_test

import (
	"flag"
	"testing"

	"github.com/envelopecodec/envelope/examples/internal/exampleenv"
)

func TestParseTakesOnlyKeyringFlagsFromTheEnvironment(t *testing.T) {
	t.Setenv("CODEC_SERVER_KEYS_FILE", "/env/keys.json")
	t.Setenv("CODEC_SERVER_TASK_QUEUE", "from-env")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	tq := fs.String("task-queue", "default-queue", "")
	if err := exampleenv.Parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("keys-file").Value.String(); got != "/env/keys.json" {
		t.Errorf("--keys-file = %q, want the environment's /env/keys.json", got)
	}
	if *tq != "default-queue" {
		t.Errorf("--task-queue = %q, want its default: only keyring flags read the environment", *tq)
	}
}

func TestParsePrefersTheCommandLine(t *testing.T) {
	t.Setenv("CODEC_SERVER_KEYS_FILE", "/env/keys.json")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var keys exampleenv.Keys
	keys.Register(fs)
	if err := exampleenv.Parse(fs, []string{"--keys-file", "/flag/keys.json"}); err != nil {
		t.Fatal(err)
	}
	if got := fs.Lookup("keys-file").Value.String(); got != "/flag/keys.json" {
		t.Errorf("--keys-file = %q, want the flag's /flag/keys.json", got)
	}
}
