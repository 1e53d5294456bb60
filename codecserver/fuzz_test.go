package codecserver_test

import (
	"strings"
	"testing"

	"github.com/envelopecodec/envelope/codecserver"
)

func FuzzResolveNamespace(f *testing.F) {
	for _, s := range [][3]string{{"", "", "default"}, {"a", "", "default"}, {"", "b", "default"}, {"a", "b", "x"}, {"a b", "", "d"}, {"", "\x00", "d"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, path, header, def string) {
		ns, err := codecserver.ResolveNamespace(path, header, def)
		if err != nil {
			if ns != "" {
				t.Fatalf("error %v with namespace %q", err, ns)
			}
			return
		}
		if codecserver.ValidNamespace(ns) != nil {
			t.Fatalf("accepted invalid namespace %q", ns)
		}
		switch {
		case path != "":
			if ns != path || header != "" && header != path {
				t.Fatalf("path %q header %q resolved to %q", path, header, ns)
			}
		case header != "":
			if ns != header {
				t.Fatalf("header %q resolved to %q", header, ns)
			}
		default:
			if ns != def {
				t.Fatalf("default %q resolved to %q", def, ns)
			}
		}
	})
}

func FuzzParsePermissions(f *testing.F) {
	for _, s := range []string{"default:read", "temporal-system:admin", "system:admin", "a:write b:READ,c:worker", ":read", "x:", "a:b:read", "ns:owner"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, claim string) {
		p, err := codecserver.ParsePermissions([]string{claim})
		if err != nil {
			if p.Allows("default", codecserver.ActionDecode) {
				t.Fatal("error with permissions")
			}
			return
		}
		// Whatever is granted must come from an entry naming the namespace
		// or the system namespace.
		for _, ns := range []string{"default", "zz-not-there"} {
			if p.Allows(ns, codecserver.ActionDecode) && !strings.Contains(claim, ns+":") && !strings.Contains(claim, "temporal-system:") {
				t.Fatalf("claim %q grants %s", claim, ns)
			}
			if p.Allows(ns, codecserver.ActionEncode) && !p.Allows(ns, codecserver.ActionDecode) {
				t.Fatalf("claim %q grants encode without decode on %s", claim, ns)
			}
		}
		// The canonical form parses to the same permissions.
		q, err := codecserver.ParsePermissions([]string{p.String()})
		if err != nil || q.String() != p.String() && len(q.String()) != len(p.String()) {
			t.Fatalf("String() %q does not re-parse: %v", p.String(), err)
		}
	})
}

func TestParsePermissions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		claim          string
		ns             string
		decode, encode bool
		err            bool
	}{
		{"default:read", "default", true, false, false},
		{"default:write", "default", true, true, false},
		{"default:worker", "default", true, true, false},
		{"default:admin", "default", true, true, false},
		{"default:READ", "default", true, false, false},
		{"temporal-system:admin", "any", true, true, false},
		{"temporal-system:read", "any", true, false, false},
		{"system:admin", "any", false, false, false},
		{"system:admin", "system", true, true, false},
		{"payments:admin", "default", false, false, false},
		{"default:owner", "default", false, false, true},
		{":read", "default", false, false, true},
		{"default", "default", false, false, true},
	} {
		p, err := codecserver.ParsePermissions([]string{tt.claim})
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.claim, err)
			continue
		}
		if got := p.Allows(tt.ns, codecserver.ActionDecode); got != tt.decode {
			t.Errorf("%q decode %s = %v", tt.claim, tt.ns, got)
		}
		if got := p.Allows(tt.ns, codecserver.ActionEncode); got != tt.encode {
			t.Errorf("%q encode %s = %v", tt.claim, tt.ns, got)
		}
	}
}
