package keyconfig_test

import (
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/keyconfig"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

func TestSubjectOptions(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "subjects")
	if _, err := subject.InitDir(dir); err != nil {
		t.Fatal(err)
	}
	withVault := keyconfig.Config{}
	withVault.Vault.Address = "http://127.0.0.1:1"
	for _, tc := range []struct {
		name    string
		s       keyconfig.Subjects
		keys    keyconfig.Config
		wantErr bool
		wantSub bool
	}{
		{"no store leaves the keyring as it is", keyconfig.Subjects{}, keyconfig.Config{}, false, false},
		{"a dir store wraps the keyring", keyconfig.Subjects{Store: "dir", Dir: dir}, keyconfig.Config{}, false, true},
		{"an uninitialised folder is refused, never made a store", keyconfig.Subjects{Store: "dir", Dir: filepath.Join(dir, "..", "other")}, keyconfig.Config{}, true, false},
		{"a dir store needs a folder", keyconfig.Subjects{Store: "dir"}, keyconfig.Config{}, true, false},
		{"a vault store needs the Vault keyring", keyconfig.Subjects{Store: "vault"}, keyconfig.Config{}, true, false},
		{"a vault store refuses another keyring even with --vault-addr", keyconfig.Subjects{Store: "vault"}, withVault, true, false},
		{"an unknown store", keyconfig.Subjects{Store: "s3"}, keyconfig.Config{}, true, false},
	} {
		base := keyringtest.New()
		kr, err := keyconfig.WrapSubjects(tc.s, base, tc.keys)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		_, isSub := kr.(*subject.Keyring)
		if isSub != tc.wantSub {
			t.Errorf("%s: got %T", tc.name, kr)
		}
	}
}
