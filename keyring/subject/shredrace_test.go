package subject_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/subject"
)

// TestDirShredRacingFirstSeal: a shred that runs while the subject's
// first key is being created (in another process) must still erase that
// key: whatever key a seal got, once Shred has returned, a payload under
// it never opens again. Each round races one first seal against one shred
// of a new subject, through separate Dir values as separate processes
// would.
func TestDirShredRacingFirstSeal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDir(t)
	const rounds = 60
	for r := range rounds {
		sealer, err := subject.NewDir(d.Folder())
		if err != nil {
			t.Fatal(err)
		}
		shredder, err := subject.NewDir(d.Folder())
		if err != nil {
			t.Fatal(err)
		}
		h, err := d.Handle(ctx, "default", fmt.Sprintf("customer-%d", r))
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			dk      keyring.DataKey
			sealErr error
		)
		wg.Add(2)
		go func() {
			defer wg.Done()
			dk, sealErr = sealer.NewDataKey(ctx, "default", h)
		}()
		go func() {
			defer wg.Done()
			if _, err := shredder.Shred(ctx, "default", h); err != nil {
				t.Errorf("round %d: shred: %v", r, err)
			}
		}()
		wg.Wait()
		if sealErr != nil {
			if !errors.Is(sealErr, keyring.ErrErased) {
				t.Fatalf("round %d: seal: %v, want success or ErrErased", r, sealErr)
			}
			continue
		}
		_, err = d.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
		if !errors.Is(err, keyring.ErrErased) {
			t.Fatalf("round %d: a key sealed while the subject was shredded still opens after the shred returned (err %v, want ErrErased)", r, err)
		}
	}
}

// TestDirConcurrentShredsKeepEveryErasure: shreds and re-admissions of
// one subject run at the same time (two operators, a retried command)
// each rewrite the subject's tombstone; none may fail because of another
// or lose what another recorded. Each round seals a key and shreds it
// while other shreds and a re-admission of the same subject run, through separate Dir values as
// separate processes would; afterwards the sealed key must be erased,
// never unknown (its generation lost from the tombstone).
func TestDirConcurrentShredsKeepEveryErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newDir(t)
	const rounds, shredders = 40, 3
	open := func() *subject.Dir {
		s, err := subject.NewDir(d.Folder())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for r := range rounds {
		h, err := d.Handle(ctx, "default", fmt.Sprintf("customer-%d", r))
		if err != nil {
			t.Fatal(err)
		}
		// The subject was shredded and re-admitted before: its tombstone
		// exists and records nothing of the key sealed below.
		if _, err := d.Shred(ctx, "default", h); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Readmit(ctx, "default", h); err != nil {
			t.Fatal(err)
		}
		var (
			wg      sync.WaitGroup
			dk      keyring.DataKey
			sealErr error
		)
		sealer := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dk, sealErr = sealer.NewDataKey(ctx, "default", h); sealErr == nil {
				if _, err := sealer.Shred(ctx, "default", h); err != nil {
					t.Errorf("round %d: shred after the seal: %v", r, err)
				}
			}
		}()
		for range shredders {
			s := open()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Shred(ctx, "default", h); err != nil {
					t.Errorf("round %d: shred: %v", r, err)
				}
			}()
		}
		readmitter := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := readmitter.Readmit(ctx, "default", h); err != nil {
				t.Errorf("round %d: readmit: %v", r, err)
			}
		}()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if sealErr != nil {
			if !errors.Is(sealErr, keyring.ErrErased) {
				t.Fatalf("round %d: seal: %v, want success or ErrErased", r, sealErr)
			}
			continue
		}
		_, err = d.UnwrapDataKeys(ctx, "default", []keyring.WrappedKey{{KeyID: dk.KeyID, Wrapped: dk.Wrapped}})
		if !errors.Is(err, keyring.ErrErased) {
			t.Fatalf("round %d: a shredded key is not recorded as erased (err %v, want ErrErased)", r, err)
		}
	}
}
