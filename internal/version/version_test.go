package version_test

import (
	"runtime/debug"
	"testing"

	"github.com/envelopecodec/envelope/internal/version"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	main := debug.Module{Path: "github.com/envelopecodec/envelope"}
	for _, tt := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: main.Path, Version: "v0.3.0"}}, true,
			"codec-server v0.3.0 (github.com/envelopecodec/envelope, go1.26.0)"},
		{"a clone built with VCS stamping", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: main.Path, Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "true"}}}, true,
			"codec-server (devel) (github.com/envelopecodec/envelope, revision 1a2b3c4d5e6f with local changes, go1.26.0)"},
		{"a clone built with -buildvcs=false", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: main.Path, Version: "(devel)"}}, true,
			"codec-server (devel) (github.com/envelopecodec/envelope, revision unknown: built without VCS information (-buildvcs=false), go1.26.0)"},
		{"no build information", nil, false, "codec-server (no build information)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := version.Format("codec-server", tt.bi, tt.ok); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRequested(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"--version"}, true},
		{[]string{"--keys-file", "k.json", "-version"}, true},
		{[]string{"--", "--version"}, false},
		{[]string{"--keys-file", "k.json"}, false},
		{nil, false},
	} {
		if got := version.Requested(tt.args); got != tt.want {
			t.Errorf("Requested(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
