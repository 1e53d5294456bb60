package keyring_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "keyring-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyring.json")

	// `codec-server keys new --file keyring.json` does the same.
	created, err := keyring.CreateFile(path, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	kr, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		log.Fatal(err)
	}
	dk, err := kr.NewDataKey(context.Background(), "default")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dk.KeyID == "local/"+created.ID, len(dk.Wrapped), dk.Key)

	keys, err := kr.UnwrapDataKeys(context.Background(), "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(keys[0].Len())
	// Output:
	// true 60 [REDACTED]
	// 32
}

func ExampleRotateFile() {
	dir, err := os.MkdirTemp("", "keyring-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keyring.json")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if _, err := keyring.CreateFile(path, t0); err != nil {
		log.Fatal(err)
	}
	if _, err := keyring.RotateFile(path, t0.AddDate(0, 1, 0)); err != nil {
		log.Fatal(err)
	}
	infos, err := keyring.ListFile(path)
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range infos {
		fmt.Println(strings.SplitN(k.ID, "-", 4)[:3], k.Active)
	}
	// Output:
	// [2026 11 01] false
	// [2026 12 01] true
}
