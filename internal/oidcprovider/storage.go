package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// storage is the example provider's in-memory storage with our users, JWT
// access tokens carrying permissions, and rotating signing keys.
type storage struct {
	*exstorage.Storage
	perms map[string][]string // user ID -> permissions
	keys  *keyRing
}

func newStorage(users []UserConfig, keys *keyRing) *storage {
	us := userStore{byID: make(map[string]*exstorage.User)}
	perms := make(map[string][]string)
	for _, u := range users {
		first, last, _ := strings.Cut(u.Name, " ")
		us.byID[u.ID] = &exstorage.User{
			ID: u.ID, Username: u.Username, Password: u.Password,
			FirstName: first, LastName: last,
			Email: u.Email, EmailVerified: true,
			PreferredLanguage: language.English,
		}
		perms[u.ID] = append([]string{}, u.Permissions...)
	}
	return &storage{Storage: exstorage.NewStorage(us), perms: perms, keys: keys}
}

// GetClientByClientID makes every client get JWT access tokens (the
// example's web clients get opaque ones).
func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// GetPrivateClaimsFromScopes adds the user's permissions to JWT access
// tokens, whatever the scopes.
func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromScopes(ctx, userID, clientID, scopes)
	if err != nil {
		return nil, err
	}
	if claims == nil {
		claims = make(map[string]any)
	}
	claims["permissions"] = s.perms[userID]
	return claims, nil
}

// SigningKey returns the newest key.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return s.keys.current(), nil
}

// SignatureAlgorithms: RS256 only.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet publishes every key made so far, newest first.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return s.keys.public(), nil
}

// userStore holds the users of the config file.
type userStore struct{ byID map[string]*exstorage.User }

func (u userStore) GetUserByID(id string) *exstorage.User { return u.byID[id] }

func (u userStore) GetUserByUsername(name string) *exstorage.User {
	for _, v := range u.byID {
		if v.Username == name {
			return v
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return exstorage.ServiceUserID }

// keyRing holds the RSA signing keys; the last one signs.
type keyRing struct {
	mu   sync.Mutex
	keys []*signingKey
}

func newKeyRing() (*keyRing, error) {
	k := &keyRing{}
	if _, err := k.rotate(); err != nil {
		return nil, err
	}
	return k, nil
}

// rotate makes a new signing key and returns its kid.
func (k *keyRing) rotate() (string, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	sk := &signingKey{id: hex.EncodeToString(id), key: priv}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, sk)
	return sk.id, nil
}

func (k *keyRing) current() *signingKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[len(k.keys)-1]
}

func (k *keyRing) public() []op.Key {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]op.Key, 0, len(k.keys))
	for i := len(k.keys) - 1; i >= 0; i-- {
		out = append(out, publicKey{k.keys[i]})
	}
	return out
}

// signingKey implements op.SigningKey.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (s *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (s *signingKey) Key() any                                    { return s.key }
func (s *signingKey) ID() string                                  { return s.id }

// publicKey implements op.Key.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }
