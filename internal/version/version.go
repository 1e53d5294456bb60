// Package version says which build of a command is running, from the
// build information the Go toolchain embeds: the module version (a tag
// when built with `go install ...@vX.Y.Z`, "(devel)" from a clone) and
// the VCS revision (when built from a git checkout without
// -buildvcs=false).
package version

import (
	"runtime/debug"
	"strings"
)

// Requested reports whether args ask for the version: --version or
// -version before any "--".
func Requested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version", "-version":
			return true
		}
	}
	return false
}

// String returns one line naming the command, its module version, VCS
// revision and Go version, e.g.
//
//	codec-server v0.3.0 (github.com/envelopecodec/envelope, revision 1a2b3c4d5e6f, go1.26.0)
func String(command string) string {
	bi, ok := debug.ReadBuildInfo()
	return Format(command, bi, ok)
}

// Format is String for given build information (ok false: none).
func Format(command string, bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return command + " (no build information)"
	}
	ver := bi.Main.Version
	if ver == "" {
		ver = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var parts []string
	if bi.Main.Path != "" {
		parts = append(parts, bi.Main.Path)
	}
	switch {
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		r := "revision " + rev
		if modified == "true" {
			r += " with local changes"
		}
		parts = append(parts, r)
	case ver == "(devel)":
		// A build from a clone with -buildvcs=false (the Makefile's
		// default): say so rather than print nothing.
		parts = append(parts, "revision unknown: built without VCS information (-buildvcs=false)")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return command + " " + ver + " (" + strings.Join(parts, ", ") + ")"
}
