// Package awskms is a keyring backed by AWS Key Management Service: the KMS
// key never leaves KMS, the codec only ever holds data keys.
//
// # Data keys
//
// [Keyring.NewDataKey] calls GenerateDataKey (AES_256) on the namespace's
// KMS key; KMS returns the data key in plaintext and wrapped under the KMS
// key, and the wrapped form (KMS's ciphertext blob) is what each payload
// stores. The codec reuses a data key for many payloads within its bounds
// (codec.Options.DataKeyMaxUses and DataKeyMaxAge), so encoding costs one
// GenerateDataKey per namespace per hour, not one per payload.
// [Keyring.UnwrapDataKeys] calls Decrypt once per distinct wrapped key of a
// decode request (KMS has no batch decrypt), at most Config.Concurrency
// requests at a time over the whole keyring; the codec caches unwrapped
// data keys, so later requests for the same payloads cost no call.
//
// # Encryption context
//
// Every data key is wrapped with the encryption context
// {"namespace": <Temporal namespace>, "envelope-format": "1"} (see
// [EncryptionContext]). KMS binds the context to the ciphertext: Decrypt
// with another namespace fails (InvalidCiphertextException, mapped to
// keyring.ErrUnwrap), on top of the codec's own binding of the namespace
// in the payload's additional data. IAM policies can grant a principal a
// namespace's keys only, with a kms:EncryptionContext:namespace
// condition (docs/KMS.md).
//
// # Key IDs and pinning
//
// A key ID is "aws-kms/v1/<key ARN>" (see [KeyID]): the ARN of the KMS key
// that wrapped the data key, as GenerateDataKey reports it, also when the
// keyring is configured with an alias. Decryption is pinned to the
// configured keys: the ARNs of Config.Key and Config.PreviousKeys (aliases
// resolved with DescribeKey and cached, looked up again at most every 10s
// when a payload names a key they do not resolve to). A payload naming any
// other key is refused before Decrypt is called, so a payload cannot make
// the keyring use a key it was not configured with.
//
// # Key rotation
//
// KMS's automatic key rotation keeps the key ARN and keeps every earlier
// key material: old payloads keep decoding, new data keys are wrapped
// under the new material, and nothing changes for the codec. Moving to a
// different KMS key (pointing the alias at a new key, or a new Config.Key)
// reaches new payloads within codec.Options.DataKeyMaxAge; list the old key
// in Config.PreviousKeys so its payloads keep decoding.
//
// # Namespaces
//
// With a key containing {namespace} (for example
// "alias/temporal-{namespace}") each Temporal namespace has its own KMS
// key. An empty namespace means "default". KMS alias names hold letters,
// digits, '/', '_' and '-' only; a namespace with other characters (or a
// '/') gets no key and is refused with keyring.ErrPermission.
//
// # Errors and retries
//
// The SDK's standard retryer retries ThrottlingException (and KMS's other
// throttling codes), 5xx answers and network failures with exponential
// backoff and jitter, at most Config.MaxRetries times; Config.Timeout bounds
// a whole keyring call, retries included. Errors name the operation, the
// key and KMS's reason, never key material, and wrap the keyring
// sentinels: a missing, disabled or pending-deletion key is
// keyring.ErrUnknownKey (the error says which, and when a key is to be
// deleted); a wrapped key KMS cannot decrypt under the key and context is
// keyring.ErrUnwrap; AccessDeniedException and refused credentials are
// keyring.ErrPermission; throttling after the retries, 5xx and no answer
// are keyring.ErrUnavailable.
//
// # Configuration
//
// Config.AWS is the SDK's aws.Config; commands load it with
// config.LoadDefaultConfig: the default credential chain (environment, the
// shared files, web identity, ECS and EC2 roles), the region, and the
// endpoint from AWS_ENDPOINT_URL_KMS or AWS_ENDPOINT_URL (a VPC endpoint or
// an emulator such as local-kms). This package reads no environment.
package awskms
