package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// KeyGeneration implements keyring.Rotating: it changes whenever the
// keyring sees a newer version of a transit key it seals with, from the
// poll (Config.KeyPollInterval) or from a data key Vault handed out.
func (k *Keyring) KeyGeneration() uint64 { return k.gen.Load() }

// sawVersion records that version v is the latest of the transit key name
// and changes the key generation when it is newer than the one seen before.
func (k *Keyring) sawVersion(name string, v int) {
	k.versionMu.Lock()
	defer k.versionMu.Unlock()
	prev, known := k.versions[name]
	if v <= prev {
		return
	}
	k.versions[name] = v
	if known {
		k.gen.Add(1)
		k.logger.Info("vault transit key has a new version; new payloads use it", "key", name, "version", v, "previous_version", prev)
	}
}

// pollLoop reads the latest version of the transit keys in use every
// pollInterval until Close.
func (k *Keyring) pollLoop() {
	defer close(k.pollDone)
	t := time.NewTicker(k.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-k.bgCtx.Done():
			return
		case <-t.C:
			k.pollOnce(k.bgCtx)
		}
	}
}

// pollOnce reads the latest version of every transit key the keyring has
// sealed with (and of the configured key when it is not a template).
func (k *Keyring) pollOnce(ctx context.Context) {
	k.versionMu.Lock()
	names := make([]string, 0, len(k.versions)+1)
	for n := range k.versions {
		names = append(names, n)
	}
	if _, ok := k.versions[k.keyName]; !ok && !k.templated {
		names = append(names, k.keyName)
	}
	k.versionMu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		v, err := k.latestVersion(ctx, name)
		k.versionMu.Lock()
		wasFailing := k.pollFailing[name]
		k.pollFailing[name] = err != nil
		k.versionMu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Log a failure streak once, then at debug level.
			level := k.logger.Warn
			if wasFailing {
				level = k.logger.Debug
			}
			level("vault: cannot read the latest version of a transit key; rotations reach new payloads only when data keys expire", "key", name, "err", err)
			continue
		}
		if wasFailing {
			k.logger.Info("vault: reading the transit key's latest version works again", "key", name)
		}
		k.sawVersion(name, v)
	}
}

// latestVersion reads transit/keys/<name> and returns latest_version.
func (k *Keyring) latestVersion(ctx context.Context, name string) (int, error) {
	o := op{name: "read key", key: name}
	r, err := k.call(ctx, o, http.MethodGet, k.mount+"/keys/"+name, nil, 0, false)
	if err != nil {
		return 0, err
	}
	var d struct {
		LatestVersion int `json:"latest_version"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil || d.LatestVersion < 1 || d.LatestVersion > maxVersion {
		return 0, fmt.Errorf("vault: %s: malformed answer", o)
	}
	return d.LatestVersion, nil
}
