package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/envelopecodec/envelope/blindindex"
	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/vault"
)

const emailIdx = "CustomerEmailIdx"

// searchKeys is a keyring under test: the starter's in-process keyring,
// the codec-server flags and environment that name the same keys, and how
// to rotate them.
type searchKeys struct {
	kr     keyring.Keyring // also a keyring.IndexKeys
	args   []string
	env    []string
	rotate func(t *testing.T)
}

// TestSearchByBlindIndex finds a customer's workflows by e-mail with the
// real CLI, although Temporal only ever stores a token of it: workflows of
// two customers carry CustomerEmailIdx tokens set by the starter;
// `temporal workflow list --query "$(codec-server blind-index ...)"` lists
// exactly the first customer's; `workflow describe` shows no e-mail; after
// an index key rotation the clause holds the old and the new token and
// finds workflows of both ages. Once with a key file, once with Vault
// transit's hmac.
func TestSearchByBlindIndex(t *testing.T) {
	t.Parallel()
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{SearchAttributes: []string{emailIdx + "=Keyword"}})

	t.Run("key file", func(t *testing.T) {
		t.Parallel()
		path := newKeyFile(t)
		f, err := keyring.OpenFile(path, keyring.FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		searchFlow(t, tc, searchKeys{kr: f, args: []string{"--keys-file", path}, rotate: func(t *testing.T) {
			cmd := exec.Command(testenv.BuiltBinary(t, "codec-server"), "keys", "rotate", "--file", path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("keys rotate: %v\n%s", err, out)
			}
			if _, err := f.Reload(); err != nil {
				t.Fatal(err)
			}
		}})
	})

	t.Run("vault transit hmac", func(t *testing.T) {
		t.Parallel()
		v := testenv.StartVault(t)
		v.CreateKey(t, "temporal")
		v.WritePolicy(t, "envelope-search", testenv.TransitPolicy("temporal")+
			`path "transit/hmac/temporal/*" { capabilities = ["update"] }`+"\n")
		token := v.CreateToken(t, testenv.TokenOptions{Policies: []string{"envelope-search"}, TTL: "1h"})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		kr, err := vault.New(ctx, vault.Config{Address: v.Addr, Token: token, KeyName: "temporal"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kr.Close() })
		searchFlow(t, tc, searchKeys{
			kr:     kr,
			args:   []string{"--vault-addr", v.Addr, "--vault-key", "temporal"},
			env:    []string{"VAULT_TOKEN=" + token},
			rotate: func(t *testing.T) { v.RotateKey(t, "temporal") },
		})
	})
}

// TestExampleStarterSetsEmailIndex: the example starter sets
// CustomerEmailIdx to its customer's e-mail token, so the search the README
// shows finds its workflow, and the stored history and search attributes
// hold no e-mail.
func TestExampleStarterSetsEmailIndex(t *testing.T) {
	t.Parallel()
	tc := testenv.StartTemporal(t, testenv.TemporalOptions{SearchAttributes: []string{emailIdx + "=Keyword"}})
	keys := newKeyFile(t)
	e := env{temporal: tc, keyArgs: []string{"--keys-file", keys}}
	s := newSecrets(t)
	startWorker(t, e, "tq-search")
	r := runStarter(t, e, "tq-search", s)
	other := newSecrets(t)
	runStarter(t, e, "tq-search", other)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clause := blindIndexClause(t, searchKeys{args: []string{"--keys-file", keys}}, s.Email)
	list := listUntil(t, ctx, tc, clause, r.WorkflowID)
	assertListed(t, list, []string{r.WorkflowID}, []string{"onboard-" + other.CustomerID})
	desc := tc.CLI(ctx, "workflow", "describe", "-w", r.WorkflowID, "-o", "json")
	if desc.Err != nil || !strings.Contains(desc.Stdout, `"`+emailIdx+`"`) {
		t.Fatalf("the stored search attributes (workflow describe -o json) hold no %s: %s", emailIdx, desc)
	}
	assertNoEmail(t, "workflow describe -o json", desc.Stdout, s.Email)
}

func searchFlow(t *testing.T, tc *testenv.Temporal, k searchKeys) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cdc, err := codec.New(k.kr, codec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := tc.Client(t, client.Options{DataConverter: converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), cdc)})
	ix, err := blindindex.New(k.kr.(keyring.IndexKeys), blindindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := temporal.NewSearchAttributeKeyKeyword(emailIdx)
	r := randHex(t, 4)
	ada, grace := "ada."+r+"@example.com", "grace."+r+"@example.com"
	start := func(id, email string) string {
		t.Helper()
		attr, err := ix.Attribute(ctx, "default", "email", key, email)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    id,
			TaskQueue:             "search-" + r, // no worker: the workflows stay running
			TypedSearchAttributes: temporal.NewSearchAttributes(attr),
			Memo:                  map[string]any{"email": email},
		}, "Onboard", map[string]string{"email": email})
		if err != nil {
			t.Fatal(err)
		}
		token, _ := temporal.NewSearchAttributes(attr).GetKeyword(key)
		return token
	}
	adaOld, graceWF, adaNew := "search-ada-"+r, "search-grace-"+r, "search-ada-after-rotation-"+r
	adaToken := start(adaOld, ada)
	start(graceWF, grace)

	// The user's command line: the clause is printed by codec-server and
	// pasted by the shell's $(...), which drops the final newline.
	clause := blindIndexClause(t, k, ada)
	if want := emailIdx + " IN ('" + adaToken + "')"; clause != want {
		t.Fatalf("codec-server blind-index printed %q, want %q", clause, want)
	}
	list := listUntil(t, ctx, tc, clause, adaOld)
	t.Logf("temporal workflow list --query %q:\n%s", clause, list)
	assertListed(t, list, []string{adaOld}, []string{graceWF, adaNew})

	desc := tc.CLI(ctx, "workflow", "describe", "-w", adaOld, "-o", "json")
	if desc.Err != nil {
		t.Fatal(desc)
	}
	assertNoEmail(t, "workflow describe -o json", desc.Stdout, ada)
	// What Temporal stores and indexes is the token: -o json prints the
	// attribute's payload data, the JSON string of the token, in base64.
	if printed := base64.StdEncoding.EncodeToString([]byte(`"` + adaToken + `"`)); !strings.Contains(desc.Stdout, `"`+emailIdx+`"`) || !strings.Contains(desc.Stdout, `"data": "`+printed+`"`) {
		t.Fatalf("the stored %s is not the token %s (%s):\n%s", emailIdx, adaToken, printed, desc.Stdout)
	}

	k.rotate(t)
	adaNewToken := start(adaNew, ada)
	if adaNewToken == adaToken {
		t.Fatalf("after the rotation the starter still sets the old token %s", adaToken)
	}
	clause = blindIndexClause(t, k, ada)
	if want := emailIdx + " IN ('" + adaNewToken + "', '" + adaToken + "')"; clause != want {
		t.Fatalf("after the rotation codec-server blind-index printed %q, want %q", clause, want)
	}
	list = listUntil(t, ctx, tc, clause, adaNew)
	assertListed(t, list, []string{adaOld, adaNew}, []string{graceWF})
}

// blindIndexClause runs `codec-server blind-index --attribute
// CustomerEmailIdx EMAIL` and returns its output as $(...) pastes it.
func blindIndexClause(t *testing.T, k searchKeys, email string) string {
	t.Helper()
	args := append(append([]string{"blind-index"}, k.args...), "--namespace", "default", "--field", "email", "--attribute", emailIdx, email)
	cmd := exec.Command(testenv.BuiltBinary(t, "codec-server"), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, k.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("codec-server blind-index: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stdout.String()+stderr.String(), email) {
		t.Fatalf("codec-server blind-index printed the e-mail:\n%s%s", stdout.String(), stderr.String())
	}
	return strings.TrimRight(stdout.String(), "\n")
}

// listUntil runs `temporal workflow list --query clause` until its output
// names the workflow want (visibility is eventually consistent) and
// returns the last output.
func listUntil(t *testing.T, ctx context.Context, tc *testenv.Temporal, clause, want string) string {
	t.Helper()
	for {
		res := tc.CLI(ctx, "workflow", "list", "--query", clause)
		if res.Err == nil && strings.Contains(res.Stdout, want) {
			return res.Stdout
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workflow list never showed %s: %s", want, res)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// assertListed checks the text `temporal workflow list` printed: a header
// line and exactly one row per workflow of want, none of notWant.
func assertListed(t *testing.T, out string, want, notWant []string) {
	t.Helper()
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if strings.TrimSpace(line) != "" {
			rows = append(rows, line)
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("workflow list printed %d rows, want %d (%v):\n%s", len(rows), len(want), want, out)
	}
	for _, id := range want {
		if !strings.Contains(out, id+" ") && !strings.HasSuffix(strings.TrimSpace(out), id) {
			t.Errorf("workflow list does not show %s:\n%s", id, out)
		}
	}
	for _, id := range notWant {
		if strings.Contains(out, id) {
			t.Errorf("workflow list shows %s:\n%s", id, out)
		}
	}
}

// assertNoEmail checks that the CLI's JSON output holds the e-mail neither
// in its text nor in any base64-decoded string (payloads are base64).
func assertNoEmail(t *testing.T, what, out, email string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	for _, h := range append([]string{out}, decodedStrings(doc)...) {
		if strings.Contains(h, email) || strings.Contains(h, strings.SplitN(email, "@", 2)[0]) {
			t.Fatalf("%s holds the e-mail %s:\n%s", what, email, out)
		}
	}
}
