package awskms_test

import (
	"fmt"

	"github.com/envelopecodec/envelope/keyring/awskms"
)

// A payload's key ID names the ARN of the KMS key that wrapped its data
// key; the data key was wrapped with the namespace in KMS's encryption
// context. (An example ARN, never a real key.)
func ExampleParseKeyID() {
	id, err := awskms.ParseKeyID("aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
	if err != nil {
		panic(err)
	}
	fmt.Println(id.ARN)
	ec := awskms.EncryptionContext("payments")
	fmt.Println(ec[awskms.ContextNamespace], ec[awskms.ContextFormat])
	// Output:
	// arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
	// payments 1
}
