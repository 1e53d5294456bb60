package codecenv_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/codecenv"
	"github.com/envelopecodec/envelope/keyring"
)

// Load reads the keyring from the codec server's variables and the
// namespace from the Temporal client's; the result dials Temporal
// (client.Dial(env.ClientOptions)) with sealed payloads and failures.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "codecenv-example")
	defer os.RemoveAll(dir)
	keys := filepath.Join(dir, "keys.json") // a fresh key: never share a test key
	if _, err := keyring.CreateFile(keys, time.Now()); err != nil {
		fmt.Println(err)
		return
	}
	// In a real program, leave LookupEnv nil: Load reads os.LookupEnv.
	vars := map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "TEMPORAL_NAMESPACE": "payments"}
	env, err := codecenv.Load(context.Background(), codecenv.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer env.Close()

	fmt.Println("namespace:", env.ClientOptions.Namespace, env.Codec.Namespace())
	p, _ := env.DataConverter.ToPayload("4111 1111 1111 1111")
	fmt.Println("payload:", string(p.Metadata["encoding"]))
	f := env.FailureConverter.ErrorToFailure(temporal.NewApplicationError("invalid card 4111 1111 1111 1111", "CardDeclined"))
	fmt.Println("failure message stored:", f.GetMessage())
	fmt.Println("failure attributes:", string(f.GetEncodedAttributes().GetMetadata()["encoding"]))
	// Output:
	// namespace: payments payments
	// payload: binary/encrypted
	// failure message stored: Encoded failure
	// failure attributes: binary/encrypted
}
