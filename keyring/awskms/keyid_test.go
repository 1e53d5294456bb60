package awskms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/keyring/awskms"
)

const exampleARN = "arn:aws:kms:eu-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"a key ARN", "aws-kms/v1/" + exampleARN, true},
		{"a multi-region key ARN in another partition", "aws-kms/v1/arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", true},
		{"an alias ARN is not a key", "aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:alias/temporal", false},
		{"an alias name is not a key", "aws-kms/v1/alias/temporal", false},
		{"a bare key ID is not an ARN", "aws-kms/v1/1234abcd-12ab-34cd-56ef-1234567890ab", false},
		{"another keyring's prefix", "vault/transit/temporal/v1", false},
		{"another format version", "aws-kms/v2/" + exampleARN, false},
		{"another service", "aws-kms/v1/arn:aws:s3:eu-west-2:111122223333:key/abc", false},
		{"an account that is not 12 digits", "aws-kms/v1/arn:aws:kms:eu-west-2:1111:key/abc", false},
		{"an extra colon", "aws-kms/v1/" + exampleARN + ":x", false},
		{"a slash in the key ID", "aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:key/a/b", false},
		{"too long", "aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:key/" + strings.Repeat("a", 300), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := awskms.ParseKeyID(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseKeyID(%q): %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err == nil && id.String() != tt.in {
				t.Fatalf("ParseKeyID(%q).String() = %q", tt.in, id.String())
			}
			if err != nil && !errors.Is(err, awskms.ErrKeyID) {
				t.Fatalf("ParseKeyID(%q): %v, want an error wrapping the key ID error", tt.in, err)
			}
		})
	}
}

// FuzzParseKeyID checks that key IDs from payloads either parse and
// re-encode to the same bytes or fail with the key ID error.
func FuzzParseKeyID(f *testing.F) {
	f.Add("aws-kms/v1/" + exampleARN)
	f.Add("aws-kms/v1/arn:aws:kms:eu-west-2:111122223333:alias/x")
	f.Add("aws-kms/v1/arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-0")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := awskms.ParseKeyID(s)
		if err != nil {
			if !errors.Is(err, awskms.ErrKeyID) {
				t.Fatalf("ParseKeyID(%q): %v does not wrap the key ID error", s, err)
			}
			return
		}
		if id.String() != s {
			t.Fatalf("ParseKeyID(%q) re-encodes to %q", s, id.String())
		}
		if len(s) > 256 {
			t.Fatalf("ParseKeyID accepted %d bytes", len(s))
		}
	})
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  awskms.Config
		want string
	}{
		{"no key", awskms.Config{}, "no KMS key"},
		{"a key that is no KMS key name", awskms.Config{Key: "temporal key"}, "is not a KMS key ID"},
		{"a previous key that is no KMS key name", awskms.Config{Key: "alias/a", PreviousKeys: []string{"arn:aws:s3:::bucket"}}, "previous key"},
		{"no region", awskms.Config{Key: "alias/a"}, "no AWS region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := awskms.New(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "awskms: ") {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
