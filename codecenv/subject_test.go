package codecenv_test

import (
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/envelopecodec/envelope/keyring/subject"
)

// CODEC_SERVER_SUBJECT_STORE gives the codec data subject keys
// (docs/ERASURE.md), as --subject-store gives the server.
func TestLoadSubjectStore(t *testing.T) {
	t.Parallel()
	keys := keyFile(t)
	store := filepath.Join(t.TempDir(), "s")
	if _, err := subject.InitDir(store); err != nil {
		t.Fatal(err)
	}
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}}
	for _, tt := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"a dir store seals for a subject", map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "CODEC_SERVER_SUBJECT_STORE": "dir", "CODEC_SERVER_SUBJECT_DIR": store}, ""},
		{"an uninitialised folder is an error at load, never made a store", map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "CODEC_SERVER_SUBJECT_STORE": "dir", "CODEC_SERVER_SUBJECT_DIR": filepath.Join(t.TempDir(), "s")}, "codec-server keys init-subject-store"},
		{"without a store a subject cannot seal", map[string]string{"CODEC_SERVER_KEYS_FILE": keys}, "SubjectKeyring"},
		{"a dir store without a folder is an error at load", map[string]string{"CODEC_SERVER_KEYS_FILE": keys, "CODEC_SERVER_SUBJECT_STORE": "dir"}, "--subject-dir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := load(t, tt.env)
			if err == nil {
				_, err = e.Codec.ForSubject("customer-1").Encode(in)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
