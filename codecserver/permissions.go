package codecserver

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/envelopecodec/envelope/internal/truncate"
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

// Permissions are the roles an identity holds, by namespace. Roles under
// TemporalSystemNamespace apply to all namespaces. The zero value allows
// nothing.
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
	add(TemporalSystemNamespace, p.system)
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
// It is the strict form of the claim reading tokens get: the same parser,
// where the first entry that would be ignored is an error.
func ParsePermissions(entries []string) (Permissions, error) {
	var all []any
	for _, e := range entries {
		all = append(all, splitPermissions(e)...)
	}
	p, problems := readPermissions(all, nil, true)
	if len(problems) > 0 {
		return Permissions{}, problems[0]
	}
	return p, nil
}

// splitPermissions splits a claim that is one string into its entries,
// separated by spaces or commas.
func splitPermissions(s string) []any {
	var out []any
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' }) {
		out = append(out, f)
	}
	return out
}

// readPermissions is the one permission-entry parser: it grants the role
// of every entry that is a string "<namespace>:<role>" (or that re
// matches) with a known role and a valid namespace, and returns why each
// other entry was skipped. At most maxPermissions entries are read; with
// stop it returns at the first problem.
func readPermissions(entries []any, re *PermissionsRegex, stop bool) (p Permissions, problems []error) {
	p = Permissions{byNS: make(map[string]Role)}
	for n, e := range entries {
		if n >= maxPermissions {
			for range entries[n:] {
				problems = append(problems, fmt.Errorf("more than %d permissions", maxPermissions))
			}
			return p, problems
		}
		if err := p.grant(e, re); err != nil {
			problems = append(problems, err)
			if stop {
				return p, problems
			}
		}
	}
	return p, problems
}

// grant adds the role entry e names, or says why it names none.
func (p *Permissions) grant(e any, re *PermissionsRegex) error {
	s, ok := e.(string)
	if !ok {
		return errors.New("permission is not a string")
	}
	ns, roleName, ok := re.split(s)
	if !ok {
		return errors.New("permission is not <namespace>:<role>")
	}
	role, ok := roleNames[strings.ToLower(roleName)]
	if !ok {
		return fmt.Errorf("permission for namespace %q has an unknown role", truncate.To(ns, 64))
	}
	if ns == TemporalSystemNamespace {
		p.system |= role
		return nil
	}
	if err := ValidNamespace(ns); err != nil {
		return fmt.Errorf("permission: %w", err)
	}
	p.byNS[ns] |= role
	return nil
}

// TemporalSystemNamespace is the pseudo-namespace whose roles apply to every
// namespace ("temporal-system:admin"), as in Temporal's default JWT claim
// mapper. "system:<role>" is an ordinary namespace named "system", as it is
// for Temporal.
const TemporalSystemNamespace = "temporal-system"

// claimPermissions reads a token's permissions claim the way Temporal's
// default JWT claim mapper does: each entry that is a string of the form
// "<namespace>:<role>" (or, with re set, that re matches, taking its named
// groups "namespace" and "role") grants that role; entries that are not
// strings, do not have that shape, name an unknown role or an invalid
// namespace are ignored and counted in ignored. So one odd entry never
// spoils the token: it is judged by its other entries. A claim that is one
// string holds entries separated by spaces or commas. At most
// maxPermissions entries are read.
func claimPermissions(raw any, re *PermissionsRegex) (p Permissions, ignored int) {
	var entries []any
	switch x := raw.(type) {
	case nil:
	case []any:
		entries = x
	case []string:
		for _, s := range x {
			entries = append(entries, s)
		}
	case string:
		entries = splitPermissions(x)
	default:
		return Permissions{byNS: make(map[string]Role)}, 1
	}
	p, problems := readPermissions(entries, re, false)
	return p, len(problems)
}

// PermissionsRegex parses permission entries of other shapes than
// "<namespace>:<role>", like Temporal's permissionsRegex: the named groups
// "namespace" and "role" of the first match are taken.
type PermissionsRegex struct {
	re         *regexp.Regexp
	nsI, roleI int
}

// CompilePermissionsRegex compiles expr, which must have the named groups
// "namespace" and "role".
func CompilePermissionsRegex(expr string) (*PermissionsRegex, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("codecserver: permissions regex: %w", err)
	}
	pr := &PermissionsRegex{re: re, nsI: re.SubexpIndex("namespace"), roleI: re.SubexpIndex("role")}
	if pr.nsI < 0 || pr.roleI < 0 {
		return nil, errors.New("codecserver: permissions regex needs the named groups (?P<namespace>...) and (?P<role>...)")
	}
	return pr, nil
}

// String returns the expression.
func (pr *PermissionsRegex) String() string {
	if pr == nil {
		return ""
	}
	return pr.re.String()
}

// split splits one entry into namespace and role: by pr when set, else at
// the first ':' as Temporal does.
func (pr *PermissionsRegex) split(s string) (ns, role string, ok bool) {
	if pr == nil {
		ns, role, ok = strings.Cut(s, ":")
		return ns, role, ok && ns != ""
	}
	m := pr.re.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[pr.nsI], m[pr.roleI], m[pr.nsI] != ""
}

// merge adds the roles of q to p (p must have a map).
func (p *Permissions) merge(q Permissions) {
	p.all = p.all || q.all
	p.system |= q.system
	for ns, r := range q.byNS {
		p.byNS[ns] |= r
	}
}
