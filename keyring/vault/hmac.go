package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// hmacStart starts every answer of transit/hmac: "vault:v<N>:<base64>".
const hmacStart = "vault:v"

var _ keyring.IndexKeys = (*Keyring)(nil)

// IndexKeyVersions returns "v<N>" for every version of the namespace's
// transit key that can still compute HMACs, newest first: from the latest
// version down to the highest of min_decryption_version,
// min_encryption_version and min_available_version (transit/keys/<key>,
// which the token's policy must allow reading). Raising
// min_decryption_version thus also drops index key versions from queries.
func (k *Keyring) IndexKeyVersions(ctx context.Context, namespace string) ([]string, error) {
	name, err := k.KeyName(namespace)
	if err != nil {
		return nil, err
	}
	o := op{name: "read key", key: name}
	r, err := k.call(ctx, o, http.MethodGet, k.mount+"/keys/"+name, nil, k.maxRetries, false)
	if err != nil {
		return nil, err
	}
	var d struct {
		LatestVersion        int `json:"latest_version"`
		MinDecryptionVersion int `json:"min_decryption_version"`
		MinEncryptionVersion int `json:"min_encryption_version"`
		MinAvailableVersion  int `json:"min_available_version"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil || d.LatestVersion < 1 || d.LatestVersion > maxVersion {
		return nil, fmt.Errorf("vault: %s: malformed answer", o)
	}
	lo := max(1, d.MinDecryptionVersion, d.MinEncryptionVersion, d.MinAvailableVersion)
	var out []string
	for v := d.LatestVersion; v >= lo; v-- {
		out = append(out, "v"+strconv.Itoa(v))
	}
	return out, nil
}

// IndexMACs computes the HMAC-SHA256 of keyring.IndexContext(namespace,
// field) ‖ input for each input with transit/hmac/<key>/sha2-256 of the
// namespace's transit key, at key version version ("v<N>", or "" for the
// latest), sending up to 1,000 inputs per call as one batch_input. Each
// transit key version has its own HMAC key, which never leaves Vault and is
// not the key that wraps data keys. Errors name the key and Vault's reason,
// never an input.
func (k *Keyring) IndexMACs(ctx context.Context, namespace, field, version string, inputs [][]byte) (string, [][]byte, error) {
	name, err := k.KeyName(namespace)
	if err != nil {
		return "", nil, err
	}
	prefix, err := keyring.IndexContext(namespace, field)
	if err != nil {
		return "", nil, err
	}
	want := 0
	if version != "" {
		v, ok := parseVersion(strings.TrimPrefix(version, "v"))
		if !ok || !strings.HasPrefix(version, "v") {
			return "", nil, fmt.Errorf("vault: index key version %q is not v<N>: %w", truncate.To(version, maxReasonLen), keyring.ErrUnknownKey)
		}
		want = v
	}
	macs := make([][]byte, len(inputs))
	used := version
	for lo := 0; lo < len(inputs); lo += maxBatch {
		hi := min(lo+maxBatch, len(inputs))
		v, err := k.hmacBatch(ctx, name, want, prefix, inputs[lo:hi], macs[lo:hi])
		if err != nil {
			return "", nil, err
		}
		if used != "" && used != v {
			return "", nil, fmt.Errorf("vault: hmac with key %q: answered with key version %s, then %s", name, used, v)
		}
		// Later batches of a call use the version the first one got, so
		// a rotation in between cannot mix versions.
		used = v
		want, _ = parseVersion(strings.TrimPrefix(v, "v"))
	}
	if used == "" {
		// No inputs: name the version new tokens would use.
		vs, err := k.IndexKeyVersions(ctx, namespace)
		if err != nil {
			return "", nil, err
		}
		if len(vs) == 0 {
			return "", nil, fmt.Errorf("vault: blind index: transit key of namespace %q has no usable version: %w", namespace, keyring.ErrUnknownKey)
		}
		used = vs[0]
	}
	return used, macs, nil
}

// hmacBatch MACs prefix ‖ input for each input with one transit/hmac call
// at key version (0 for the latest), stores the MACs in out and returns the
// version Vault used ("v<N>").
func (k *Keyring) hmacBatch(ctx context.Context, name string, version int, prefix []byte, inputs [][]byte, out [][]byte) (string, error) {
	type item struct {
		Input string `json:"input"`
	}
	batch := make([]item, len(inputs))
	buf := make([]byte, 0, len(prefix)+64)
	for i, in := range inputs {
		buf = append(append(buf[:0], prefix...), in...)
		batch[i] = item{Input: base64.StdEncoding.EncodeToString(buf)}
	}
	body := map[string]any{"batch_input": batch}
	if version > 0 {
		body["key_version"] = version
	}
	o := op{name: "hmac", key: name}
	r, err := k.call(ctx, o, http.MethodPut, k.mount+"/hmac/"+name+"/sha2-256", body, k.maxRetries, true)
	if err != nil {
		return "", err
	}
	var d struct {
		BatchResults []struct {
			HMAC  string `json:"hmac"`
			Error string `json:"error"`
		} `json:"batch_results"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil || len(d.BatchResults) != len(inputs) {
		return "", fmt.Errorf("vault: %s: malformed batch answer (%d results for %d items)", o, len(d.BatchResults), len(inputs))
	}
	used := ""
	for i, res := range d.BatchResults {
		if res.Error != "" {
			return "", fmt.Errorf("vault: %s: vault refused item %d: %s", o, i, reasonText([]string{res.Error}))
		}
		v, mac, ok := parseHMAC(res.HMAC)
		if !ok {
			return "", fmt.Errorf("vault: %s: item %d: answer is not a \"vault:vN:\" HMAC", o, i)
		}
		if used != "" && v != used {
			return "", fmt.Errorf("vault: %s: items answered with key versions %s and %s", o, used, v)
		}
		used, out[i] = v, mac
	}
	if version > 0 && used != "v"+strconv.Itoa(version) {
		return "", fmt.Errorf("vault: %s: asked for key version v%d, answered with %s", o, version, used)
	}
	return used, nil
}

// parseHMAC splits Vault's "vault:v<N>:<base64 of 32 bytes>" into "v<N>"
// and the MAC.
func parseHMAC(s string) (version string, mac []byte, ok bool) {
	rest, found := strings.CutPrefix(s, hmacStart)
	if !found {
		return "", nil, false
	}
	num, b64, found := strings.Cut(rest, ":")
	if _, vok := parseVersion(num); !found || !vok {
		return "", nil, false
	}
	mac, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(mac) != 32 {
		return "", nil, false
	}
	return "v" + num, mac, true
}
