package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"

	"github.com/envelopecodec/envelope/internal/truncate"
	"github.com/envelopecodec/envelope/keyring"
)

// authMethod returns the login method for AppRole or Kubernetes auth, or
// nil for token auth.
func authMethod(cfg Config) (api.AuthMethod, error) {
	switch {
	case cfg.AppRoleRoleID != "":
		mount := cfg.AppRoleMount
		if mount == "" {
			mount = DefaultAppRoleMount
		}
		if cfg.AppRoleSecretID == "" {
			return nil, errors.New("vault: AppRole auth needs a secret ID")
		}
		a, err := approle.NewAppRoleAuth(cfg.AppRoleRoleID, &approle.SecretID{FromString: cfg.AppRoleSecretID}, approle.WithMountPath(mount))
		if err != nil {
			return nil, fmt.Errorf("vault: approle auth: %w", err)
		}
		return a, nil
	case cfg.KubernetesRole != "":
		mount := cfg.KubernetesMount
		if mount == "" {
			mount = DefaultKubernetesMount
		}
		path := cfg.KubernetesTokenPath
		if path == "" {
			path = DefaultKubernetesTokenPath
		}
		return kubernetesLogin{role: cfg.KubernetesRole, mount: mount, tokenPath: path}, nil
	}
	return nil, nil
}

// kubernetesLogin logs in with the pod's service account token. It reads
// the token file at every login: kubelet replaces projected tokens before
// they expire, and the api package's method reads the file only once.
type kubernetesLogin struct {
	role, mount, tokenPath string
}

func (l kubernetesLogin) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	a, err := kubernetes.NewKubernetesAuth(l.role, kubernetes.WithMountPath(l.mount), kubernetes.WithServiceAccountTokenPath(l.tokenPath))
	if err != nil {
		return nil, err
	}
	return a.Login(ctx, c)
}

// start logs in (or takes the configured token) and returns the secret the
// renewal loop watches, nil when the token needs no renewal.
func (k *Keyring) start(ctx context.Context, cfg Config) (*api.Secret, error) {
	if k.auth != nil {
		return k.login(ctx)
	}
	k.client.SetToken(cfg.Token)
	return k.tokenSecret(ctx)
}

// tokenSecret looks up the configured token and describes it for the
// lifetime watcher; nil when it is not renewable or never expires (root).
func (k *Keyring) tokenSecret(ctx context.Context) (*api.Secret, error) {
	r, err := k.call(ctx, op{name: "token lookup"}, http.MethodGet, "auth/token/lookup-self", nil, k.maxRetries, false)
	if errors.Is(err, keyring.ErrPermission) {
		// A token without the default policy cannot look itself up. The
		// key check in New tells whether it can do the real work.
		k.logger.Warn("cannot look up the vault token; token renewal is off", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d struct {
		TTL       int64 `json:"ttl"`
		Renewable bool  `json:"renewable"`
	}
	if err := json.Unmarshal(r.data, &d); err != nil {
		return nil, errors.New("vault: token lookup: malformed answer")
	}
	switch {
	case d.TTL == 0:
		return nil, nil // never expires
	case !d.Renewable:
		k.logger.Warn("vault token is not renewable; give the codec a new token before it expires, or use AppRole or Kubernetes auth",
			"expires_in", time.Duration(d.TTL)*time.Second)
		return nil, nil
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken:   k.client.Token(),
		Renewable:     true,
		LeaseDuration: int(d.TTL),
	}}, nil
}

// login logs in with the auth method (with retries for transient failures)
// and makes the new token the client's.
func (k *Keyring) login(ctx context.Context) (*api.Secret, error) {
	o := op{name: k.authName + " login"}
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, k.timeout)
		s, err := k.auth.Login(actx, k.loginClient)
		cancel()
		if err == nil {
			if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
				return nil, fmt.Errorf("vault: %s: answer has no token", o)
			}
			k.client.SetToken(s.Auth.ClientToken)
			k.tokenGen.Add(1)
			k.logger.Info("logged in to vault", "auth", k.authName, "ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable)
			return s, nil
		}
		f := classify(0, nil, err)
		if !f.retry {
			f.sentinel = keyring.ErrPermission // a refused login: bad role, secret ID or service account token
		}
		var re *api.ResponseError
		if !errors.As(err, &re) && f.sentinel == keyring.ErrUnavailable && ctx.Err() == nil && !isNetError(err) {
			// Not an answer from Vault nor a network failure, e.g. the
			// service account token file is missing.
			return nil, fmt.Errorf("vault: %s: %s: %w", o, truncate.To(err.Error(), maxReasonLen), keyring.ErrPermission)
		}
		if ctx.Err() != nil {
			return nil, k.failure(o, f, ctx.Err())
		}
		if !f.retry || attempt >= k.maxRetries {
			return nil, k.failure(o, f, nil)
		}
		wait := backoff(k.retryWait, attempt)
		k.logger.Warn("vault login failed; retrying", "auth", k.authName, "attempt", attempt+1, "retry_in", wait, "err", f.reason)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, k.failure(o, f, ctx.Err())
		case <-t.C:
		}
	}
}

// relogin logs in again after a call was refused for an invalid token,
// unless another goroutine already did since generation gen. The renewal
// loop then watches the new token.
func (k *Keyring) relogin(ctx context.Context, gen uint64) error {
	k.loginMu.Lock()
	defer k.loginMu.Unlock()
	if k.tokenGen.Load() != gen {
		return nil
	}
	k.logger.Warn("vault token is invalid; logging in again", "auth", k.authName)
	s, err := k.login(ctx)
	if err != nil {
		return err
	}
	select {
	case <-k.newSecret: // drop an older one nobody picked up
	default:
	}
	k.newSecret <- s
	return nil
}

// renewLoop renews the token with the api's lifetime watcher until Close.
// When renewal becomes impossible (the token reached its max TTL, or
// renewals failed until it expired), it logs in again (AppRole,
// Kubernetes) or, for a configured token, logs that it can do no more.
func (k *Keyring) renewLoop(secret *api.Secret) {
	defer close(k.bgDone)
	for {
		if secret == nil {
			// Nothing to renew; still pick up tokens from re-logins.
			select {
			case <-k.bgCtx.Done():
				return
			case secret = <-k.newSecret:
				continue
			}
		}
		w, err := k.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
		if err != nil {
			k.logger.Error("vault token renewal cannot start", "err", err)
			secret = nil
			continue
		}
		go w.Start()
		secret = k.watch(w)
		if k.bgCtx.Err() != nil {
			return
		}
	}
}

// watch follows one lifetime watcher and returns the next secret to
// watch, or nil.
func (k *Keyring) watch(w *api.LifetimeWatcher) *api.Secret {
	defer w.Stop()
	for {
		select {
		case <-k.bgCtx.Done():
			return nil
		case s := <-k.newSecret:
			return s
		case r := <-w.RenewCh():
			ttl := 0
			if r.Secret != nil && r.Secret.Auth != nil {
				ttl = r.Secret.Auth.LeaseDuration
			}
			k.logger.Debug("vault token renewed", "ttl", time.Duration(ttl)*time.Second)
		case err := <-w.DoneCh():
			if err != nil {
				k.logger.Warn("vault token renewal failed", "err", err)
			}
			return k.afterRenewal()
		}
	}
}

// afterRenewal gets a new token when the old one can no longer be
// renewed: it logs in again, waiting between failed attempts, until it
// succeeds or the keyring is closed.
func (k *Keyring) afterRenewal() *api.Secret {
	if k.auth == nil {
		k.logger.Error("vault token can no longer be renewed and will expire; give the codec a new token, or use AppRole or Kubernetes auth")
		return nil
	}
	for attempt := 0; ; attempt++ {
		k.loginMu.Lock()
		s, err := k.login(k.bgCtx)
		k.loginMu.Unlock()
		if err == nil {
			return s
		}
		if k.bgCtx.Err() != nil {
			return nil
		}
		wait := backoff(time.Second, attempt)
		k.logger.Error("vault login after token expiry failed", "auth", k.authName, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-k.bgCtx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// isNetError reports whether err is a failure to talk to Vault over the
// network (as opposed to a local one, such as a missing token file).
func isNetError(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded)
}
