package subject_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// A worker seals each customer's workflow under the customer's key; a
// shred erases that customer's payloads for good. The key file and the
// key folder here are throwaway examples, never for real data.
func ExampleKeyring_Shred() {
	ctx := context.Background()
	tmp, _ := os.MkdirTemp("", "subject-example")
	defer os.RemoveAll(tmp)
	keys := tmp + "/keys.json"
	keyring.CreateFile(keys, timeNow())
	base, _ := keyring.OpenFile(keys, keyring.FileOptions{})
	store, _ := subject.InitDir(tmp + "/subjects") // once: codec-server keys init-subject-store
	kr, _ := subject.New(base, store, subject.Options{})

	c, _ := codec.New(kr, codec.Options{
		// Workflow "onboard-customer-42" belongs to data subject "customer-42".
		Subject: func(sc converter.SerializationContext) string {
			if w, ok := sc.(converter.WorkflowSerializationContext); ok {
				if id, ok := strings.CutPrefix(w.WorkflowID, "onboard-"); ok {
					return id
				}
			}
			return ""
		},
	})
	worker := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: "onboard-customer-42"})
	sealed, _ := worker.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"ada@example.com"`)}})
	// The key ID names a handle, never the subject ID.
	fmt.Println(strings.Contains(string(sealed[0].Metadata["encryption-key-id"]), "customer-42"))

	_, existed, _ := kr.Shred(ctx, subject.Request{Namespace: "default", Subject: "customer-42", By: "dpo@example.com", Reference: "TICKET-123"})
	fmt.Println("shredded:", existed)

	fresh, _ := codec.New(kr, codec.Options{}) // e.g. a restarted codec server
	_, err := fresh.Decode(sealed)
	fmt.Println(errors.Is(err, codec.ErrErased))
	// Sealing for the customer fails too, until re-admitted.
	_, err = worker.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"again"`)}})
	fmt.Println(errors.Is(err, codec.ErrErased))
	// Output:
	// false
	// shredded: true
	// true
	// true
}

func timeNow() time.Time { return time.Now() }
