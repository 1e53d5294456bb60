package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/envelopecodec/envelope/codec"
	"github.com/envelopecodec/envelope/internal/testenv"
	"github.com/envelopecodec/envelope/keyring"
	"github.com/envelopecodec/envelope/keyring/awskms"
)

const (
	keyIDMeta   = "encryption-key-id"
	wrappedMeta = "encryption-wrapped-key"
)

// counter is an aws.HTTPClient that counts KMS requests (attempts, retries
// included) by operation, and can answer the first requests of an
// operation with an error of its own instead of passing them on.
type counter struct {
	base aws.HTTPClient
	mu   sync.Mutex
	n    map[string]int
	fail map[string][]fakeAnswer // operation -> answers for its next requests

	inflight, maxInflight int // requests under way, and their peak
}

// fakeAnswer is an error answer in KMS's JSON protocol.
type fakeAnswer struct {
	status int
	code   string
}

func newCounter() *counter {
	return &counter{base: awshttp.NewBuildableClient(), n: map[string]int{}, fail: map[string][]fakeAnswer{}}
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	c.mu.Lock()
	c.n[op]++
	var fake *fakeAnswer
	if q := c.fail[op]; len(q) > 0 {
		fake, c.fail[op] = &q[0], q[1:]
	}
	c.inflight++
	c.maxInflight = max(c.maxInflight, c.inflight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inflight--
		c.mu.Unlock()
	}()
	if fake != nil {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		body := fmt.Sprintf(`{"__type":%q,"message":"Rate exceeded"}`, fake.code)
		return &http.Response{
			StatusCode: fake.status, Status: http.StatusText(fake.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amzn-Requestid": {"fake"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       r,
		}, nil
	}
	return c.base.Do(r)
}

// Fail makes the next len(answers) requests of operation get answers.
func (c *counter) Fail(operation string, answers ...fakeAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail[operation] = append(c.fail[operation], answers...)
}

// Count returns the requests of operation, or of all operations for "".
func (c *counter) Count(operation string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for op, n := range c.n {
		if operation == "" || op == operation {
			total += n
		}
	}
	return total
}

func (c *counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = map[string]int{}
	c.maxInflight = 0
}

// MaxInflight returns the most requests under way at once since Reset.
func (c *counter) MaxInflight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxInflight
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// open returns a keyring on the emulator; cnt, when not nil, sees every
// request.
func open(t testing.TB, k *testenv.KMS, cfg awskms.Config, cnt *counter) *awskms.Keyring {
	t.Helper()
	kr, err := tryOpen(t, k, cfg, cnt)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func tryOpen(t testing.TB, k *testenv.KMS, cfg awskms.Config, cnt *counter) (*awskms.Keyring, error) {
	t.Helper()
	cfg.AWS = k.AWSConfig()
	if cnt != nil {
		cfg.AWS.HTTPClient = cnt
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return awskms.New(ctx, cfg)
}

func newCodec(t testing.TB, kr keyring.Keyring, opts codec.Options) *codec.Codec {
	t.Helper()
	c, err := codec.New(kr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func payloads(n int, tag string) []*commonpb.Payload {
	ps := make([]*commonpb.Payload, n)
	for i := range ps {
		ps[i] = &commonpb.Payload{
			Metadata: map[string][]byte{"encoding": []byte("json/plain")},
			Data:     fmt.Appendf(nil, `{"tag":%q,"i":%d}`, tag, i),
		}
	}
	return ps
}

func encode(t testing.TB, c *codec.Codec, ps []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.EncodeContext(context.Background(), ps)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decode(t testing.TB, c *codec.Codec, sealed, want []*commonpb.Payload) {
	t.Helper()
	got, err := c.DecodeContext(context.Background(), sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d payloads, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("payload %d: decoded %v, want %v", i, got[i], want[i])
		}
	}
}

func wrappedKey(p *commonpb.Payload) keyring.WrappedKey {
	return keyring.WrappedKey{KeyID: string(p.GetMetadata()[keyIDMeta]), Wrapped: p.GetMetadata()[wrappedMeta]}
}

// TestKMS runs the tests that can share one local-kms; each uses its own
// KMS keys.
func TestKMS(t *testing.T) {
	k := testenv.StartKMS(t)

	t.Run("payloads round-trip through the codec and the key ID carries the key ARN", func(t *testing.T) {
		t.Parallel()
		arn := k.CreateKey(t, "alias/roundtrip")
		for _, key := range []string{arn, "alias/roundtrip", strings.TrimPrefix(arn[strings.LastIndex(arn, ":")+1:], "key/")} {
			kr := open(t, k, awskms.Config{Key: key}, nil)
			c := newCodec(t, kr, codec.Options{})
			ps := payloads(20, "roundtrip")
			sealed := encode(t, c, ps)
			for i, p := range sealed {
				if got, want := string(p.Metadata[keyIDMeta]), "aws-kms/v1/"+arn; got != want {
					t.Fatalf("key %q: payload %d: key id %q, want %q", key, i, got, want)
				}
				if bytes.Contains(p.Data, ps[i].Data) {
					t.Fatalf("payload %d: sealed data contains the plaintext", i)
				}
			}
			// A fresh codec on a fresh keyring: nothing cached.
			decode(t, newCodec(t, open(t, k, awskms.Config{Key: key}, nil), codec.Options{}), sealed, ps)
		}
	})

	t.Run("KMS refuses a data key under another namespace's encryption context, and so does the codec", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/context")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/context"}, cnt)
		ps := payloads(3, "context")
		sealed := encode(t, newCodec(t, kr, codec.Options{Namespace: "a"}), ps)
		w := wrappedKey(sealed[0])

		// KMS itself: the same blob decrypts with namespace a's context
		// and not with b's.
		ctx := context.Background()
		if _, err := k.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: w.Wrapped, EncryptionContext: awskms.EncryptionContext("a")}); err != nil {
			t.Fatalf("KMS Decrypt with namespace a's context: %v", err)
		}
		_, err := k.Client().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: w.Wrapped, EncryptionContext: awskms.EncryptionContext("b")})
		var ice *types.InvalidCiphertextException
		if !errors.As(err, &ice) {
			t.Fatalf("KMS Decrypt with namespace b's context: %v, want InvalidCiphertextException", err)
		}

		// The keyring asked for namespace b (one key for all namespaces,
		// so only KMS's context check stands in the way): KMS is asked
		// and refuses.
		cnt.Reset()
		_, err = kr.UnwrapDataKeys(ctx, "b", []keyring.WrappedKey{w})
		if !errors.Is(err, keyring.ErrUnwrap) || !strings.Contains(err.Error(), "InvalidCiphertextException") {
			t.Fatalf("unwrap of a's data key for namespace b: %v, want keyring.ErrUnwrap from InvalidCiphertextException", err)
		}
		if n := cnt.Count("Decrypt"); n != 1 {
			t.Fatalf("Decrypt calls: %d, want 1 (the refusal is KMS's)", n)
		}

		// The codec refuses b's decode of a's payloads before the keyring.
		cnt.Reset()
		_, err = newCodec(t, kr, codec.Options{Namespace: "b"}).DecodeContext(ctx, sealed)
		if !errors.Is(err, codec.ErrNamespace) {
			t.Fatalf("decode of a's payloads as namespace b: %v, want codec.ErrNamespace", err)
		}
		if n := cnt.Count(""); n != 0 {
			t.Fatalf("KMS calls for the codec's refusal: %d, want 0", n)
		}
		decode(t, newCodec(t, kr, codec.Options{Namespace: "a"}), sealed, ps)
	})

	t.Run("a payload naming a key that is not configured is refused before KMS is called", func(t *testing.T) {
		t.Parallel()
		mine := k.CreateKey(t)
		other := k.CreateKey(t, "alias/other")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: mine}, cnt)
		foreign := open(t, k, awskms.Config{Key: other}, nil)
		sealed := encode(t, newCodec(t, foreign, codec.Options{}), payloads(1, "foreign"))
		cnt.Reset()
		_, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), sealed)
		if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "decode payload 0") || !strings.Contains(err.Error(), other) {
			t.Fatalf("decode of a payload wrapped under another KMS key: %v, want keyring.ErrUnknownKey naming payload 0 and the key", err)
		}
		if n := cnt.Count(""); n != 0 {
			t.Fatalf("KMS calls: %d, want 0", n)
		}
		// With an alias configured, the alias is looked up (DescribeKey),
		// never the payload's key, and Decrypt is not called.
		k.SetAlias(t, "alias/mine", mine)
		cnt2 := newCounter()
		kr2 := open(t, k, awskms.Config{Key: "alias/mine"}, cnt2)
		cnt2.Reset()
		if _, err := kr2.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{wrappedKey(sealed[0])}); !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("unwrap through an alias keyring: %v, want keyring.ErrUnknownKey", err)
		}
		if n := cnt2.Count("Decrypt"); n != 0 {
			t.Fatalf("Decrypt calls: %d, want 0", n)
		}
	})

	t.Run("with a key per namespace, namespace b's keys are refused for namespace a", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/tenant-a")
		k.CreateKey(t, "alias/tenant-b")
		k.CreateKey(t, "alias/tenant-default")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/tenant-{namespace}"}, cnt)
		c := newCodec(t, kr, codec.Options{})
		psA, psB := payloads(2, "a"), payloads(2, "b")
		sealedA := encode(t, c.ForNamespace("a"), psA)
		sealedB := encode(t, c.ForNamespace("b"), psB)
		if string(sealedA[0].Metadata[keyIDMeta]) == string(sealedB[0].Metadata[keyIDMeta]) {
			t.Fatalf("namespaces a and b share key id %q", sealedA[0].Metadata[keyIDMeta])
		}
		decode(t, newCodec(t, kr, codec.Options{Namespace: "a"}), sealedA, psA)
		decode(t, newCodec(t, kr, codec.Options{Namespace: "b"}), sealedB, psB)
		cnt.Reset()
		_, err := kr.UnwrapDataKeys(context.Background(), "a", []keyring.WrappedKey{wrappedKey(sealedB[0])})
		if !errors.Is(err, keyring.ErrPermission) || !strings.Contains(err.Error(), `namespace "a"`) {
			t.Fatalf("unwrap of b's key for namespace a: %v, want keyring.ErrPermission", err)
		}
		if n := cnt.Count("Decrypt"); n != 0 {
			t.Fatalf("Decrypt calls: %d, want 0", n)
		}
		if _, err := kr.NewDataKey(context.Background(), "bad.name"); !errors.Is(err, keyring.ErrPermission) {
			t.Fatalf("NewDataKey for a namespace that cannot name an alias: %v, want keyring.ErrPermission", err)
		}
		_, err = kr.NewDataKey(context.Background(), "nokey")
		if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "alias/tenant-nokey") {
			t.Fatalf("NewDataKey for a namespace without a key: %v, want keyring.ErrUnknownKey naming alias/tenant-nokey", err)
		}
	})

	t.Run("previous keys decrypt, and only they", func(t *testing.T) {
		t.Parallel()
		oldARN := k.CreateKey(t, "alias/prev-old")
		k.CreateKey(t, "alias/prev-new")
		ps := payloads(5, "previous")
		old := encode(t, newCodec(t, open(t, k, awskms.Config{Key: "alias/prev-old"}, nil), codec.Options{}), ps)

		kr := open(t, k, awskms.Config{Key: "alias/prev-new", PreviousKeys: []string{"alias/prev-old"}}, nil)
		c := newCodec(t, kr, codec.Options{})
		decode(t, c, old, ps)
		fresh := encode(t, c, ps)
		if string(fresh[0].Metadata[keyIDMeta]) == "aws-kms/v1/"+oldARN {
			t.Fatalf("new payloads sealed under the previous key")
		}
		decode(t, newCodec(t, kr, codec.Options{}), fresh, ps)

		without := open(t, k, awskms.Config{Key: "alias/prev-new"}, nil)
		if _, err := newCodec(t, without, codec.Options{}).DecodeContext(context.Background(), old); !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("decode of the old key's payloads without --aws-kms-previous-keys: %v, want keyring.ErrUnknownKey", err)
		}
	})

	t.Run("an alias moved to a new key keeps decoding old payloads when the old key is a previous key", func(t *testing.T) {
		t.Parallel()
		oldARN := k.CreateKey(t, "alias/moving")
		ps := payloads(3, "moving")
		old := encode(t, newCodec(t, open(t, k, awskms.Config{Key: "alias/moving"}, nil), codec.Options{}), ps)
		kr := open(t, k, awskms.Config{Key: "alias/moving", PreviousKeys: []string{oldARN}}, nil)
		newARN := k.CreateKey(t)
		k.SetAlias(t, "alias/moving", newARN)
		// A codec that sealed before the move (its keyring resolved the
		// alias to the old key) decodes payloads of the new key: the
		// keyring looks the alias up again.
		fresh := encode(t, newCodec(t, open(t, k, awskms.Config{Key: "alias/moving"}, nil), codec.Options{}), ps)
		if got := string(fresh[0].Metadata[keyIDMeta]); got != "aws-kms/v1/"+newARN {
			t.Fatalf("after the move: key id %q, want the new key %q", got, newARN)
		}
		decode(t, newCodec(t, kr, codec.Options{}), old, ps)
		decode(t, newCodec(t, kr, codec.Options{}), fresh, ps)
	})

	t.Run("a key scheduled for deletion gives a clear error", func(t *testing.T) {
		t.Parallel()
		arn := k.CreateKey(t, "alias/doomed")
		kr := open(t, k, awskms.Config{Key: "alias/doomed"}, nil)
		ps := payloads(2, "doomed")
		sealed := encode(t, newCodec(t, kr, codec.Options{}), ps)
		k.ScheduleKeyDeletion(t, arn)
		_, err := newCodec(t, kr, codec.Options{}).DecodeContext(context.Background(), sealed)
		if !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "pending deletion") || !strings.Contains(err.Error(), "decode payload 0") || !strings.Contains(err.Error(), arn) {
			t.Fatalf("decode under a key pending deletion: %v, want keyring.ErrUnknownKey saying the key is pending deletion, naming payload 0 and the key", err)
		}
		t.Logf("the error: %v", err)
		if _, err := kr.NewDataKey(context.Background(), ""); !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), "pending deletion") {
			t.Fatalf("NewDataKey under a key pending deletion: %v, want keyring.ErrUnknownKey saying pending deletion", err)
		}
		if err := kr.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "pending deletion") {
			t.Fatalf("Check with the key pending deletion: %v, want an error saying pending deletion", err)
		}
		if _, err := tryOpen(t, k, awskms.Config{Key: "alias/doomed"}, nil); err == nil || !strings.Contains(err.Error(), "pending deletion") {
			t.Fatalf("New with the key pending deletion: %v, want an error saying pending deletion", err)
		}
	})

	t.Run("Check describes the key; with a template a missing default key is still ready", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/check")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/check"}, cnt)
		if err := kr.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := cnt.Count("DescribeKey"); n != 2 { // New's check and this one
			t.Fatalf("DescribeKey calls: %d, want 2", n)
		}
		if _, err := tryOpen(t, k, awskms.Config{Key: "alias/no-such-key"}, nil); !errors.Is(err, keyring.ErrUnknownKey) {
			t.Fatalf("New with a missing key: %v, want keyring.ErrUnknownKey", err)
		}
		if _, err := tryOpen(t, k, awskms.Config{Key: "alias/check-{namespace}"}, nil); err != nil {
			t.Fatalf("New with a template whose default key is missing: %v", err)
		}
	})

	t.Run("10000 payloads cost a handful of KMS calls", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/count")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/count"}, cnt)
		cnt.Reset()
		const total, batch = 10000, 100
		ps := payloads(total, "count")
		enc := newCodec(t, kr, codec.Options{})
		var sealed []*commonpb.Payload
		for lo := 0; lo < total; lo += batch {
			sealed = append(sealed, encode(t, enc, ps[lo:lo+batch])...)
		}
		generate := cnt.Count("GenerateDataKey")
		// Decoding with a fresh codec (a codec server that did not
		// encode): the first batch asks KMS, the rest hit the codec's
		// data key cache.
		dec := newCodec(t, kr, codec.Options{})
		for lo := 0; lo < total; lo += batch {
			decode(t, dec, sealed[lo:lo+batch], ps[lo:lo+batch])
		}
		decrypts := cnt.Count("Decrypt")
		// And all 10000 in one decode request.
		decode(t, newCodec(t, kr, codec.Options{}), sealed, ps)
		oneRequest := cnt.Count("Decrypt") - decrypts
		all := cnt.Count("")
		t.Logf("KMS calls for %d payloads: encode (batches of %d) %d GenerateDataKey; decode (batches of %d) %d Decrypt; decode in one request %d Decrypt; all KMS calls %d",
			total, batch, generate, batch, decrypts, oneRequest, all)
		if generate != 1 || decrypts != 1 || oneRequest != 1 || all != 3 {
			t.Fatalf("KMS calls: GenerateDataKey %d, Decrypt %d, one-request Decrypt %d, all %d; want 1, 1, 1, 3", generate, decrypts, oneRequest, all)
		}
	})

	t.Run("one decode unwraps each distinct wrapped key once", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/distinct")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/distinct"}, cnt)
		// Five codecs seal with five data keys; the payloads are
		// interleaved and each wrapped key appears many times.
		var sealed, want []*commonpb.Payload
		for i := range 5 {
			ps := payloads(40, fmt.Sprint("distinct", i))
			sealed = append(sealed, encode(t, newCodec(t, kr, codec.Options{}), ps)...)
			want = append(want, ps...)
		}
		cnt.Reset()
		decode(t, newCodec(t, kr, codec.Options{}), sealed, want)
		if n := cnt.Count("Decrypt"); n != 5 {
			t.Fatalf("Decrypt calls: %d, want 5 (one per distinct wrapped key)", n)
		}
		// The keyring itself, given the same wrapped key twice, asks once.
		cnt.Reset()
		w := wrappedKey(sealed[0])
		secrets, err := kr.UnwrapDataKeys(context.Background(), "", []keyring.WrappedKey{w, wrappedKey(sealed[40]), w})
		if err != nil {
			t.Fatal(err)
		}
		if n := cnt.Count("Decrypt"); n != 2 {
			t.Fatalf("Decrypt calls for 3 keys, 2 distinct: %d, want 2", n)
		}
		if !bytes.Equal(secrets[0].UnsafeBytes(), secrets[2].UnsafeBytes()) || bytes.Equal(secrets[0].UnsafeBytes(), secrets[1].UnsafeBytes()) {
			t.Fatal("unwrapped keys do not match the wrapped keys")
		}
	})

	t.Run("a decode of many data keys keeps at most Concurrency requests in flight", func(t *testing.T) {
		t.Parallel()
		k.CreateKey(t, "alias/concurrency")
		sealer := open(t, k, awskms.Config{Key: "alias/concurrency"}, nil)
		var sealed, want []*commonpb.Payload
		for i := range 12 {
			ps := payloads(3, fmt.Sprint("concurrency", i))
			sealed = append(sealed, encode(t, newCodec(t, sealer, codec.Options{}), ps)...)
			want = append(want, ps...)
		}
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/concurrency", Concurrency: 3}, cnt)
		cnt.Reset()
		decode(t, newCodec(t, kr, codec.Options{}), sealed, want)
		if n, peak := cnt.Count("Decrypt"), cnt.MaxInflight(); n != 12 || peak > 3 {
			t.Fatalf("Decrypt calls %d with at most %d at once; want 12 with at most 3", n, peak)
		}
		t.Logf("12 Decrypt calls, at most %d at once", cnt.MaxInflight())
	})

	t.Run("enabling automatic key rotation keeps payloads decoding", func(t *testing.T) {
		t.Parallel()
		arn := k.CreateKey(t, "alias/rotating")
		kr := open(t, k, awskms.Config{Key: "alias/rotating"}, nil)
		ps := payloads(3, "rotating")
		sealed := encode(t, newCodec(t, kr, codec.Options{}), ps)
		if _, err := k.Client().EnableKeyRotation(context.Background(), &kms.EnableKeyRotationInput{KeyId: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		decode(t, newCodec(t, kr, codec.Options{}), sealed, ps)
		fresh := encode(t, newCodec(t, kr, codec.Options{}), ps)
		if got := string(fresh[0].Metadata[keyIDMeta]); got != "aws-kms/v1/"+arn {
			t.Fatalf("after enabling rotation: key id %q, want the same key ARN", got)
		}
		decode(t, newCodec(t, kr, codec.Options{}), fresh, ps)
	})

	t.Run("throttling is retried", func(t *testing.T) {
		// The throttling answers come from the test's HTTP client
		// (local-kms does not throttle); the retried requests reach
		// local-kms.
		t.Parallel()
		k.CreateKey(t, "alias/throttle")
		cnt := newCounter()
		kr := open(t, k, awskms.Config{Key: "alias/throttle"}, cnt)
		throttled := fakeAnswer{status: http.StatusBadRequest, code: "ThrottlingException"}
		cnt.Fail("GenerateDataKey", throttled, fakeAnswer{status: http.StatusInternalServerError, code: "KMSInternalException"})
		ps := payloads(2, "throttle")
		sealed := encode(t, newCodec(t, kr, codec.Options{}), ps)
		if n := cnt.Count("GenerateDataKey"); n != 3 {
			t.Fatalf("GenerateDataKey requests: %d, want 3 (two failures, then success)", n)
		}
		cnt.Fail("Decrypt", throttled, throttled)
		decode(t, newCodec(t, kr, codec.Options{}), sealed, ps)
		if n := cnt.Count("Decrypt"); n != 3 {
			t.Fatalf("Decrypt requests: %d, want 3 (two throttled, then success)", n)
		}

		// Throttled more often than MaxRetries: the keyring gives up
		// with keyring.ErrUnavailable and KMS's reason.
		few := open(t, k, awskms.Config{Key: "alias/throttle", MaxRetries: 1}, cnt)
		cnt.Reset()
		cnt.Fail("Decrypt", throttled, throttled, throttled)
		_, err := newCodec(t, few, codec.Options{}).DecodeContext(context.Background(), sealed)
		if !errors.Is(err, keyring.ErrUnavailable) || !strings.Contains(err.Error(), "ThrottlingException") || !strings.Contains(err.Error(), "decode payload 0") {
			t.Fatalf("decode throttled beyond the retries: %v, want keyring.ErrUnavailable naming ThrottlingException and payload 0", err)
		}
		if n := cnt.Count("Decrypt"); n != 2 {
			t.Fatalf("Decrypt requests with MaxRetries 1: %d, want 2", n)
		}

		// The deadline bounds the retries: 50 retries would take minutes
		// of backoff; the 1.5s deadline ends them after a few.
		short := open(t, k, awskms.Config{Key: "alias/throttle", MaxRetries: 50, Timeout: 1500 * time.Millisecond}, cnt)
		cnt.Reset()
		for range 51 {
			cnt.Fail("Decrypt", throttled)
		}
		_, err = newCodec(t, short, codec.Options{}).DecodeContext(context.Background(), sealed)
		if !errors.Is(err, keyring.ErrUnavailable) {
			t.Fatalf("decode throttled until the deadline: %v, want keyring.ErrUnavailable", err)
		}
		if n := cnt.Count("Decrypt"); n >= 51 {
			t.Fatalf("Decrypt requests: %d; the deadline did not stop the retries", n)
		}
		t.Logf("throttled until the deadline: %d requests; %v", cnt.Count("Decrypt"), err)
	})
}
