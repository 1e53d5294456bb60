package codecserver

import "testing"

// FuzzClaimPermissions: any claim entry either grants a role on a valid
// namespace (or the system scope) or is ignored; nothing panics.
func FuzzClaimPermissions(f *testing.F) {
	for _, s := range []string{"default:read", "billing:viewer", "temporal-system:ADMIN", "a:b:c", ":read", "x", "ns:", "default:read payments:write"} {
		f.Add(s)
	}
	re, err := CompilePermissionsRegex(`^(?P<namespace>[^/]*)/(?P<role>.*)$`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range []*PermissionsRegex{nil, re} {
			p, ignored := claimPermissions([]any{s, 1.5, nil}, r)
			if ignored < 2 {
				t.Fatalf("the non-string entries were not ignored: %d", ignored)
			}
			for ns, role := range p.byNS {
				if ValidNamespace(ns) != nil || role == 0 {
					t.Fatalf("entry %q granted %v on invalid namespace %q", s, role, ns)
				}
			}
		}
	})
}
