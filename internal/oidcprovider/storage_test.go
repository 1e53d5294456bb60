package main

import (
	"context"
	"slices"
	"testing"

	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

func TestStorage(t *testing.T) {
	ctx := context.Background()
	exstorage.RegisterClients(exstorage.WebClient("ui", "secret", "http://127.0.0.1:1/cb"))
	keys, err := newKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	st := newStorage([]UserConfig{
		{ID: "ada", Username: "ada", Password: "pw", Permissions: []string{"default:read"}},
		{ID: "bob", Username: "bob", Password: "pw"},
	}, keys)

	c, err := st.GetClientByClientID(ctx, "ui")
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenType() != op.AccessTokenTypeJWT {
		t.Errorf("access token type %v, want JWT", c.AccessTokenType())
	}

	for _, tt := range []struct {
		user string
		want []string
	}{
		{"ada", []string{"default:read"}},
		{"bob", []string{}},
	} {
		claims, err := st.GetPrivateClaimsFromScopes(ctx, tt.user, "ui", []string{"openid"})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := claims["permissions"].([]string)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: permissions %v, want %v", tt.user, claims["permissions"], tt.want)
		}
	}
	if u := st.Storage.CheckUsernamePasswordSimple("ada", "pw"); u != nil {
		t.Errorf("ada cannot sign in: %v", u)
	}

	first, _ := st.SigningKey(ctx)
	kid, err := keys.rotate()
	if err != nil {
		t.Fatal(err)
	}
	now, _ := st.SigningKey(ctx)
	if now.ID() != kid || now.ID() == first.ID() {
		t.Errorf("after rotation the signing key is %s, want the new %s (old %s)", now.ID(), kid, first.ID())
	}
	set, _ := st.KeySet(ctx)
	var ids []string
	for _, k := range set {
		ids = append(ids, k.ID())
	}
	if !slices.Equal(ids, []string{kid, first.ID()}) {
		t.Errorf("published kids %v, want the new then the old: %v", ids, []string{kid, first.ID()})
	}
}
