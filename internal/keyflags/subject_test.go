package keyflags_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/envelopecodec/envelope/internal/keyflags"
	"github.com/envelopecodec/envelope/keyring/keyringtest"
	"github.com/envelopecodec/envelope/keyring/subject"
)

func TestSubjectOptions(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "subjects")
	if _, err := subject.InitDir(dir); err != nil {
		t.Fatal(err)
	}
	withVault := keyflags.Options{}
	withVault.Vault.Address = "http://127.0.0.1:1"
	for _, tc := range []struct {
		name    string
		s       keyflags.SubjectOptions
		keys    keyflags.Options
		wantErr bool
		wantSub bool
	}{
		{"no store leaves the keyring as it is", keyflags.SubjectOptions{}, keyflags.Options{}, false, false},
		{"a dir store wraps the keyring", keyflags.SubjectOptions{Store: "dir", Dir: dir}, keyflags.Options{}, false, true},
		{"an uninitialised folder is refused, never made a store", keyflags.SubjectOptions{Store: "dir", Dir: filepath.Join(dir, "..", "other")}, keyflags.Options{}, true, false},
		{"a dir store needs a folder", keyflags.SubjectOptions{Store: "dir"}, keyflags.Options{}, true, false},
		{"a vault store needs the Vault keyring", keyflags.SubjectOptions{Store: "vault"}, keyflags.Options{}, true, false},
		{"a vault store refuses another keyring even with --vault-addr", keyflags.SubjectOptions{Store: "vault"}, withVault, true, false},
		{"an unknown store", keyflags.SubjectOptions{Store: "s3"}, keyflags.Options{}, true, false},
	} {
		base := keyringtest.New()
		kr, err := tc.s.Wrap(context.Background(), base, &tc.keys)
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
