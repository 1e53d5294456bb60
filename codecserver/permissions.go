package codecserver

import (
	"errors"
	"fmt"
	"strings"
)

// Action is what a request does with a namespace's payloads.
type Action int

// Actions checked against [Permissions].
const (
	// ActionDecode needs the read, write, worker or admin role.
	ActionDecode Action = iota
	// ActionEncode needs the write, worker or admin role.
	ActionEncode
)

func (a Action) String() string {
	if a == ActionEncode {
		return "encode"
	}
	return "decode"
}

// Role is a Temporal role in a permission "<namespace>:<role>".
type Role uint8

// Roles as in Temporal's permission claims.
const (
	RoleRead Role = 1 << iota
	RoleWrite
	RoleWorker
	RoleAdmin
)

var roleNames = map[string]Role{"read": RoleRead, "write": RoleWrite, "worker": RoleWorker, "admin": RoleAdmin}

// allows reports whether the roles in r allow action a. Decoding shows
// plaintext, so it needs at least read; encoding needs write, worker (a
// worker that encodes through a remote codec) or admin.
func (r Role) allows(a Action) bool {
	if a == ActionEncode {
		return r&(RoleWrite|RoleWorker|RoleAdmin) != 0
	}
	return r != 0
}

// SystemNamespace is the pseudo-namespace whose roles apply to every
// namespace, as in Temporal ("system:admin").
const SystemNamespace = "system"

// Permissions are the roles an identity holds, by namespace. Roles under
// SystemNamespace apply to all namespaces. The zero value allows nothing.
type Permissions struct {
	all    bool
	system Role
	byNS   map[string]Role
}

// AllPermissions allows every action on every namespace; it is what an
// unauthenticated server grants. Only use it if no auth is configured on
// purpose.
func AllPermissions() Permissions { return Permissions{all: true} }

// Allows reports whether the permissions allow action on namespace.
func (p Permissions) Allows(namespace string, a Action) bool {
	return p.all || p.system.allows(a) || p.byNS[namespace].allows(a)
}

// String lists the permissions in Temporal's format, for logs.
func (p Permissions) String() string {
	if p.all {
		return "*"
	}
	var parts []string
	add := func(ns string, r Role) {
		for name, bit := range roleNames {
			if r&bit != 0 {
				parts = append(parts, ns+":"+name)
			}
		}
	}
	add(SystemNamespace, p.system)
	for ns, r := range p.byNS {
		add(ns, r)
	}
	return strings.Join(parts, " ")
}

// maxPermissions bounds how many entries a claim may hold.
const maxPermissions = 1024

// ParsePermissions parses permissions in Temporal's format,
// "<namespace>:<read|write|worker|admin>", given as a list of strings or as
// one string of entries separated by spaces or commas. Role names are case
// insensitive; unknown roles and entries without a namespace are errors.
func ParsePermissions(entries []string) (Permissions, error) {
	p := Permissions{byNS: make(map[string]Role)}
	n := 0
	for _, e := range entries {
		for _, f := range strings.FieldsFunc(e, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' }) {
			n++
			if n > maxPermissions {
				return Permissions{}, fmt.Errorf("more than %d permissions", maxPermissions)
			}
			i := strings.LastIndexByte(f, ':')
			if i <= 0 {
				return Permissions{}, errors.New("permission is not <namespace>:<role>")
			}
			ns, roleName := f[:i], strings.ToLower(f[i+1:])
			role, ok := roleNames[roleName]
			if !ok {
				return Permissions{}, fmt.Errorf("permission for namespace %q has an unknown role", truncate(ns, 64))
			}
			if ns == SystemNamespace {
				p.system |= role
				continue
			}
			if err := ValidNamespace(ns); err != nil {
				return Permissions{}, fmt.Errorf("permission: %w", err)
			}
			p.byNS[ns] |= role
		}
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
