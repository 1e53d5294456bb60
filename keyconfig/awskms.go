package keyconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/envelopecodec/envelope/keyring/awskms"
)

// AWSKMSSource is AWS Key Management Service (keyring/awskms). Only the key
// is ours to set: credentials, region and endpoint come from the AWS SDK's
// defaults (config.LoadDefaultConfig), which read the process environment
// (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_KMS, ...), the shared config
// files and the instance or pod role, as the AWS CLI does.
type AWSKMSSource struct {
	// Key is the KMS key that wraps new data keys (--aws-kms-key): a key
	// ARN, key ID, alias ARN or alias/NAME, or a template with {namespace}.
	Key string
	// PreviousKeys are earlier keys that still decrypt
	// (--aws-kms-previous-keys).
	PreviousKeys []string
}

func (s *AWSKMSSource) kind() string { return "aws-kms" }

func (s *AWSKMSSource) flag() string { return "--aws-kms-key" }

func (s *AWSKMSSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.Key, "aws-kms-key", s.Key, "AWS KMS key that wraps data keys: key ARN, key ID, alias ARN or alias/NAME, or a template with {namespace}, e.g. alias/temporal-{namespace}; selects the AWS KMS keyring (credentials, region and AWS_ENDPOINT_URL_KMS from the AWS SDK's defaults; docs/KMS.md)")
	fs.Var((*StringList)(&s.PreviousKeys), "aws-kms-previous-keys", "earlier AWS KMS keys (or templates) that still decrypt; payloads naming any other KMS key are refused (repeatable)")
}

func (s *AWSKMSSource) configured() bool { return s.Key != "" }

func (s *AWSKMSSource) validate() error {
	if s.Key == "" && len(s.PreviousKeys) > 0 {
		return errors.New("keyconfig: --aws-kms-previous-keys needs --aws-kms-key")
	}
	return nil
}

func (s *AWSKMSSource) open(ctx context.Context, _ *Config, logger *slog.Logger) (opened, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return opened{}, fmt.Errorf("keyconfig: AWS configuration for --aws-kms-key: %w", err)
	}
	kr, err := awskms.New(ctx, awskms.Config{AWS: awsCfg, Key: s.Key, PreviousKeys: s.PreviousKeys, Logger: logger})
	if err != nil {
		return opened{}, fmt.Errorf("keyconfig: open AWS KMS keyring with key %s: %w", s.Key, err)
	}
	desc := "AWS KMS key " + s.Key + " in " + awsCfg.Region
	if len(s.PreviousKeys) > 0 {
		desc += ", previous keys " + strings.Join(s.PreviousKeys, ", ")
	}
	logger.Info("keyring: AWS KMS", "key", s.Key, "region", awsCfg.Region, "previous_keys", s.PreviousKeys)
	return opened{kr: kr, closer: closerFunc(func() error { return nil }), desc: desc}, nil
}
