package blindindex_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/keyring"
)

// exampleKeyFile is a key file with a fixed key, so the example's output
// stays the same. NEVER use this key for real data: make a key file with
// `codec-server keys new --file F`.
const exampleKeyFile = `{"version": 2, "active": "example", "keys": [{"id": "example", "created": "2026-11-01T00:00:00Z",
  "promoted": "2026-11-01T00:00:00Z", "key": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}]}`

func Example() {
	dir, err := os.MkdirTemp("", "blindindex-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(path, []byte(exampleKeyFile), 0o600); err != nil {
		log.Fatal(err)
	}
	keys, err := keyring.OpenFile(path, keyring.FileOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ix, err := blindindex.New(keys, blindindex.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// The starter: the search attribute holds the token, not the e-mail.
	emailIdx := temporal.NewSearchAttributeKeyKeyword("CustomerEmailIdx")
	attr, err := ix.Attribute(ctx, "default", "email", emailIdx, "Ada@Example.com")
	if err != nil {
		log.Fatal(err)
	}
	opts := client.StartWorkflowOptions{
		ID:                    "onboard-ada",
		TaskQueue:             "onboarding",
		TypedSearchAttributes: temporal.NewSearchAttributes(attr),
	}
	token, _ := opts.TypedSearchAttributes.GetKeyword(emailIdx)
	fmt.Println(token)

	// The search: the clause for `temporal workflow list --query`.
	clause, err := ix.Query(ctx, "default", "email", "CustomerEmailIdx", " ada@example.com")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(clause)
	// Output:
	// k5bbd98.584b0004264aa4f0
	// CustomerEmailIdx IN ('k5bbd98.584b0004264aa4f0')
}
