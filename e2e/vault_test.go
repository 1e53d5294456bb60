package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/internal/jwttest"
	"github.com/envelopecodec/envelope/internal/testenv"
)

// TestVaultKeyring runs the same flow with the Vault transit keyring: the
// worker, the starter and the codec server wrap their data keys with a
// transit key they reach with a least-privilege token. Temporal stores only
// ciphertext whose key IDs name Vault, and the CLI decodes it through the
// codec server.
func TestVaultKeyring(t *testing.T) {
	t.Parallel()
	v := testenv.StartVault(t)
	v.CreateKey(t, "temporal")
	v.WritePolicy(t, "envelope", testenv.TransitPolicy("temporal"))
	token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"envelope"}, Renewable: true, TTL: "1h"})
	keyArgs := []string{"--vault-addr", v.Addr, "--vault-key", "temporal"}
	keyEnv := []string{"VAULT_TOKEN=" + token} // not a flag: flags show in ps

	iss := jwttest.New(t, jwttest.Options{})
	cs := testenv.StartCodecServer(t, testenv.CodecServerOptions{
		Args: append(append([]string(nil), keyArgs...),
			"--jwks-file", iss.WriteJWKSFile(t, ""), "--jwt-issuer", iss.IssuerURL(), "--jwt-audience", iss.Audience()),
		Env: keyEnv,
	})
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{})
	e := env{temporal: tc, keyArgs: keyArgs, keyEnv: keyEnv}
	s := newSecrets(t)
	startWorker(t, e, "tq-vault")
	r := runStarter(t, e, "tq-vault", s)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	raw := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "-o", "json")
	if raw.Err != nil {
		t.Fatal(raw)
	}
	assertNoPlaintext(t, "workflow show", raw.Stdout, s, 5)
	var doc any
	if err := json.Unmarshal([]byte(raw.Stdout), &doc); err != nil {
		t.Fatal(err)
	}
	ps := payloads(doc)
	if len(ps) > 0 {
		t.Logf("key id of the first payload: %q", b64(ps[0]["metadata"].(map[string]any)["encryption-key-id"]))
	}
	for i, p := range ps {
		id := string(b64(p["metadata"].(map[string]any)["encryption-key-id"]))
		if id == "" || strings.HasPrefix(id, "local/") || !strings.Contains(id, "temporal") {
			t.Errorf("payload %d has key id %q, want one of the Vault transit key temporal", i, id)
		}
	}

	// The decoded history as a person reads it.
	dec := tc.CLI(ctx, "workflow", "show", "-w", r.WorkflowID, "-r", r.RunID, "--detailed",
		"--codec-endpoint", cs.URL, "--codec-auth", iss.Bearer(t, jwttest.Claims{Permissions: []string{"default:read"}}))
	if dec.Err != nil {
		t.Fatalf("%s\ncodec server:\n%s", dec, cs.Output())
	}
	assertLines(t, "workflow show --detailed through the codec server", dec.Stdout, s.detailedLines()...)
}
