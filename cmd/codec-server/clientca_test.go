package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestValidateClientCAWithoutPermissions(t *testing.T) {
	t.Parallel()
	base := func(listen string, extra ...string) []string {
		return append([]string{"--listen", listen, "--keys-file", "keys.json", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-client-ca", "ca.pem"}, extra...)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a client CA without permissions off loopback is refused, even with --insecure-no-auth", base("0.0.0.0:8443", "--insecure-no-auth"), "--client-permission '*="},
		{"an explicit * mapping is accepted", base("0.0.0.0:8443", "--client-permission", "*=default:read"), ""},
		{"a SAN mapping is accepted", base("0.0.0.0:8443", "--client-permission", "uri:spiffe://example.org/ui=default:read"), ""},
		{"a client CA with JWT needs no mapping", base("0.0.0.0:8443", "--jwks-file", "jwks.json"), ""},
		{"a client CA without permissions on loopback is accepted", base("127.0.0.1:8443"), ""},
		{"a permissions regex without named groups is refused", []string{"--listen", "127.0.0.1:0", "--jwt-permissions-regex", `(\w+):(\w+)`}, "--jwt-permissions-regex"},
		{"an in-flight budget below the body limit is refused", []string{"--listen", "127.0.0.1:0", "--max-inflight-body-bytes", "1024"}, "--max-inflight-body-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Stderr = &bytes.Buffer{}
			m.LookupEnv = func(string) (string, bool) { return "", false }
			err := m.ParseFlags(context.Background(), tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	t.Run("the permissions regex has an environment twin", func(t *testing.T) {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		m.LookupEnv = func(k string) (string, bool) {
			if k == "CODEC_SERVER_JWT_PERMISSIONS_REGEX" {
				return `^(?P<namespace>\w+)\.(?P<role>\w+)$`, true
			}
			return "", false
		}
		if err := m.ParseFlags(context.Background(), []string{"--listen", "127.0.0.1:0"}); err != nil {
			t.Fatal(err)
		}
		if m.Config.PermissionsRegex == "" {
			t.Error("CODEC_SERVER_JWT_PERMISSIONS_REGEX was not read")
		}
	})
}
