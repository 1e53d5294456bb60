package keyring_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envelopecodec/envelope/keyring"
)

// TestConcurrentKeyCommandsLoseNoKey: key file commands run at the same
// time (a cron job's rotate and an operator's add) each add their key; none
// is lost to the other's write. A lost key is lost data: a process that
// loaded the file in between may already have sealed payloads under it.
func TestConcurrentKeyCommandsLoseNoKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := keyring.CreateFile(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var info keyring.KeyInfo
			if i%2 == 0 {
				info, errs[i] = keyring.RotateFile(path, time.Now())
			} else {
				info, errs[i] = keyring.AddKey(path, time.Now())
			}
			ids[i] = info.ID
		}()
	}
	wg.Wait()
	infos, err := keyring.ListFile(path)
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(infos))
	for _, k := range infos {
		have[k.ID] = true
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("command %d: %v", i, errs[i])
			continue
		}
		if !have[ids[i]] {
			t.Errorf("key %s, added by command %d, is not in the file", ids[i], i)
		}
	}
}
