package codecserver

import (
	"errors"
	"fmt"
)

// maxNamespaceLen is Temporal's limit on namespace names.
const maxNamespaceLen = 255

// errNamespaceConflict means the path and the X-Namespace header name
// different namespaces.
var errNamespaceConflict = errors.New("the namespace in the path and the X-Namespace header differ")

// ValidNamespace checks that ns is a plausible Temporal namespace name:
// 1 to 255 bytes of ASCII letters, digits, '-', '_' and '.', other than
// "." and ".." (which path handling anywhere may resolve).
func ValidNamespace(ns string) error {
	if ns == "" {
		return errors.New("empty namespace")
	}
	if ns == "." || ns == ".." {
		return errors.New("namespace cannot be \".\" or \"..\"")
	}
	if len(ns) > maxNamespaceLen {
		return fmt.Errorf("namespace is %d bytes, at most %d allowed", len(ns), maxNamespaceLen)
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return errors.New("namespace has characters other than letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

// ResolveNamespace applies the one namespace rule: a namespace in the path
// wins; otherwise the X-Namespace header; an empty or missing header means
// def (the temporal CLI sends an empty header for its default namespace).
// A path and a non-empty header that differ are an error, as is an invalid
// name.
func ResolveNamespace(path, header, def string) (string, error) {
	ns := def
	switch {
	case path != "":
		if header != "" && header != path {
			return "", errNamespaceConflict
		}
		ns = path
	case header != "":
		ns = header
	}
	if err := ValidNamespace(ns); err != nil {
		return "", err
	}
	return ns, nil
}
