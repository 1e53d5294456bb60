package keyconfig_test

import (
	"testing"

	"github.com/envelopecodec/envelope/keyconfig"
)

// TestSubjectVaultPrefixOverlap: a subject key name that can equal a
// namespace key name would let `keys shred --subject orders` delete the
// namespace key of "orders" (every payload of the namespace erased), and
// seal the subject under the namespace key.
func TestSubjectVaultPrefixOverlap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		key      string
		previous []string
		prefix   string
		wantErr  bool
	}{
		{"defaults", "temporal", nil, "subject-", false},
		{"template, distinct prefix", "temporal-{namespace}", nil, "subject-", false},
		{"template shares the prefix", "temporal-{namespace}", nil, "temporal-", true},
		{"prefix longer than the template's fixed part", "temporal-{namespace}", nil, "temporal-o", true},
		{"fixed key name starts with the prefix", "subject-orders", nil, "subject-", true},
		{"a previous key starts with the prefix", "temporal", []string{"subject-2025"}, "subject-", true},
		{"fixed key name starts with the tombstones' prefix", "tomb-subject-orders", nil, "subject-", true},
		{"prefix of the fixed name's own start, no subject can fill it", "temporal", nil, "temporal", false},
	} {
		keys := keyconfig.Config{}
		keys.Vault.Address = "http://127.0.0.1:1"
		keys.Vault.KeyName = tc.key
		keys.Vault.PreviousKeys = tc.previous
		keys.Subjects = keyconfig.Subjects{Store: "vault", VaultPrefix: tc.prefix}
		if err := keys.Validate(); (err != nil) != tc.wantErr {
			t.Errorf("%s: Validate: %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
}
