package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Settings of every KMS emulator that StartKMS starts. The credentials are
// dummies: local-kms accepts any signature.
const (
	KMSRegion          = "eu-west-2"
	KMSAccountID       = "111122223333"
	KMSAccessKeyID     = "AKIDENVELOPETEST"
	KMSSecretAccessKey = "envelope-test-secret-not-for-real-use"
)

// kmsStartTimeout bounds how long local-kms may take to answer.
const kmsStartTimeout = 60 * time.Second

// KMS is a real AWS KMS API emulator (github.com/nsmithuk/local-kms, built
// into bin/local-kms by scripts/tools.sh) on a loopback port, with its own
// empty data folder.
type KMS struct {
	Endpoint string // e.g. http://127.0.0.1:43123

	client *kms.Client
	proc   *Process
}

// StartKMS starts bin/local-kms on a free loopback port (region KMSRegion,
// account KMSAccountID), waits until it answers ListKeys and stops it when
// the test ends. A missing bin/local-kms fails the test with the advice to
// run `make tools`.
func StartKMS(t testing.TB) *KMS {
	t.Helper()
	bin := Binary(t, "local-kms")
	var last error
	for try := 0; try < 3; try++ {
		k, err := startKMS(t, bin)
		if err == nil {
			return k
		}
		last = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("testenv: start local-kms: %v", last)
	return nil
}

func startKMS(t testing.TB, bin string) (*KMS, error) {
	dir := t.TempDir()
	port := FreePort(t)
	k := &KMS{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	// A clean environment: no AWS_* from the developer's shell.
	cmd.Env = []string{
		"HOME=" + dir, "PATH=" + os.Getenv("PATH"),
		fmt.Sprintf("PORT=%d", port),
		"KMS_REGION=" + KMSRegion,
		"KMS_ACCOUNT_ID=" + KMSAccountID,
		"KMS_DATA_PATH=" + data,
	}
	cmd.Dir = dir
	k.proc = StartProcess(t, "local-kms", cmd)
	k.client = kms.NewFromConfig(k.AWSConfig())
	if err := k.waitReady(); err != nil {
		k.proc.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(k.proc.Output(), 40))
	}
	return k, nil
}

// waitReady polls ListKeys until local-kms answers, the process exits or
// the deadline passes.
func (k *KMS) waitReady() error {
	deadline := time.Now().Add(kmsStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := k.client.ListKeys(ctx, &kms.ListKeysInput{}, func(o *kms.Options) { o.RetryMaxAttempts = 1 })
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if k.proc.Exited() {
			return fmt.Errorf("local-kms exited before it was ready")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	return fmt.Errorf("local-kms at %s not ready after %s: %v", k.Endpoint, kmsStartTimeout, last)
}

// AWSConfig returns an SDK configuration for this emulator: its endpoint,
// region and dummy static credentials. It reads nothing from the
// environment.
func (k *KMS) AWSConfig() aws.Config {
	return aws.Config{
		Region:       KMSRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(KMSAccessKeyID, KMSSecretAccessKey, ""),
		BaseEndpoint: aws.String(k.Endpoint),
	}
}

// Env returns the environment variables that point the AWS SDK's default
// configuration (a codec server, a worker) at this emulator:
// AWS_ENDPOINT_URL_KMS, AWS_REGION and dummy static credentials. It also
// turns off the shared config files and the EC2 metadata service, so
// nothing of the machine's AWS setup leaks in.
func (k *KMS) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_KMS=" + k.Endpoint,
		"AWS_REGION=" + KMSRegion,
		"AWS_ACCESS_KEY_ID=" + KMSAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + KMSSecretAccessKey,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Client returns an SDK client for the emulator, for setting up keys.
func (k *KMS) Client() *kms.Client { return k.client }

// CreateKey creates a symmetric encryption key and, for each alias name
// ("alias/..."), an alias to it. It returns the key's ARN.
func (k *KMS) CreateKey(t testing.TB, aliases ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := k.client.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:  types.KeySpecSymmetricDefault,
		KeyUsage: types.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		t.Fatalf("testenv: kms CreateKey: %v", err)
	}
	arn := aws.ToString(out.KeyMetadata.Arn)
	for _, a := range aliases {
		k.SetAlias(t, a, arn)
	}
	return arn
}

// SetAlias points the alias name ("alias/...") at the key keyID, creating
// the alias or moving it.
func (k *KMS) SetAlias(t testing.TB, alias, keyID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := k.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)})
	if err == nil {
		return
	}
	var exists *types.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("testenv: kms CreateAlias %s: %v", alias, err)
	}
	if _, err := k.client.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("testenv: kms UpdateAlias %s: %v", alias, err)
	}
}

// ScheduleKeyDeletion schedules the key keyID for deletion (after the
// shortest waiting period, 7 days); from then on KMS refuses to use it.
func (k *KMS) ScheduleKeyDeletion(t testing.TB, keyID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := k.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatalf("testenv: kms ScheduleKeyDeletion: %v", err)
	}
}

// Stop stops local-kms and waits for it to exit. Later calls do nothing.
// Tests use it to take KMS away mid-run; StartKMS also stops it at the end.
func (k *KMS) Stop() { k.proc.Stop() }
