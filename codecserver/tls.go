package codecserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/envelopecodec/envelope/internal/ownerfile"
	"github.com/envelopecodec/envelope/internal/reload"
)

// CertExpiryWarning is how close to its expiry the serving certificate
// makes the server log a warning.
const CertExpiryWarning = 30 * 24 * time.Hour

// CertReloader serves a TLS certificate from files and reloads it when the
// files change (cert-manager and Kubernetes secrets swap them in place).
type CertReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	metrics           *Metrics

	mu       sync.RWMutex
	cert     *tls.Certificate
	certPEM  []byte
	keyPEM   []byte
	notAfter time.Time
}

// maxTLSKeyFileSize bounds what is read of a TLS private key file.
const maxTLSKeyFileSize = 1 << 20

// NewCertReloader loads the key pair; a bad pair fails here.
func NewCertReloader(certFile, keyFile string, logger *slog.Logger, m *Metrics) (*CertReloader, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &CertReloader{certFile: certFile, keyFile: keyFile, logger: logger, metrics: m}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the old certificate stays. It
// reports whether the certificate changed.
func (c *CertReloader) Reload() (bool, error) {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return false, fmt.Errorf("codecserver: TLS certificate: %w", err)
	}
	// The private key follows the key file's rule (internal/ownerfile):
	// whoever can replace it can serve as this server.
	keyPEM, _, err := ownerfile.Read(c.keyFile, maxTLSKeyFileSize, ownerfile.Check)
	if err != nil {
		return false, fmt.Errorf("codecserver: TLS key %s: %w", c.keyFile, err)
	}
	c.mu.RLock()
	same := bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("codecserver: TLS key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false, fmt.Errorf("codecserver: TLS certificate %s: %w", c.certFile, err)
		}
	}
	c.mu.Lock()
	c.cert, c.certPEM, c.keyPEM, c.notAfter = &cert, certPEM, keyPEM, leaf.NotAfter
	c.mu.Unlock()
	c.metrics.SetCertExpiry(leaf.NotAfter)
	c.checkExpiry(time.Now())
	return true, nil
}

// NotAfter returns the expiry of the current certificate.
func (c *CertReloader) NotAfter() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.notAfter
}

func (c *CertReloader) checkExpiry(now time.Time) {
	na := c.NotAfter()
	if left := na.Sub(now); left < CertExpiryWarning {
		c.logger.Warn("TLS certificate expires soon; renew it", "file", c.certFile, "not_after", na, "left", left.Round(time.Hour).String())
	}
}

// GetCertificate implements tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// Watch reloads the files every interval until ctx is done, logging
// changes, failures and a near expiry (once a day).
func (c *CertReloader) Watch(ctx context.Context, interval time.Duration) {
	lastWarn := time.Now()
	reload.Every(ctx, interval, func(now time.Time) {
		changed, err := c.Reload()
		switch {
		case err != nil:
			c.logger.Error("TLS certificate reload failed; keeping the old one", "err", err)
		case changed:
			c.logger.Info("TLS certificate reloaded", "file", c.certFile, "not_after", c.NotAfter())
			lastWarn = now
		case now.Sub(lastWarn) >= 24*time.Hour:
			c.checkExpiry(now)
			lastWarn = now
		}
	})
}

// TLSConfig returns a server TLS configuration (TLS 1.2 minimum) serving
// the reloader's certificate. With clientCAFile set, a client certificate
// is verified against its CAs when the client presents one (a certificate
// from another CA fails the handshake), but the handshake does not require
// one: Kubernetes probes and the Docker HEALTHCHECK reach /healthz and
// /readyz without. Set [Config.RequireClientCert] so that /encode and
// /decode require a verified certificate (mTLS).
func TLSConfig(c *CertReloader, clientCAFile string) (*tls.Config, error) {
	if c == nil {
		return nil, errors.New("codecserver: TLS: no certificate")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("codecserver: TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("codecserver: TLS client CA %s holds no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// ClientCAReloader serves the client CA bundle of mTLS from a file and
// reloads it when the file changes, like [CertReloader] does for the
// serving certificate: a rotated CA takes effect without a restart.
type ClientCAReloader struct {
	file   string
	logger *slog.Logger

	mu   sync.RWMutex
	pem  []byte
	pool *x509.CertPool
}

// NewClientCAReloader loads the bundle; a file without a PEM certificate
// fails here.
func NewClientCAReloader(file string, logger *slog.Logger) (*ClientCAReloader, error) {
	if logger == nil {
		logger = slog.Default()
	}
	c := &ClientCAReloader{file: file, logger: logger}
	if _, err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the file again; on error the old bundle stays. It reports
// whether the bundle changed.
func (c *ClientCAReloader) Reload() (bool, error) {
	pem, err := os.ReadFile(c.file)
	if err != nil {
		return false, fmt.Errorf("codecserver: TLS client CA: %w", err)
	}
	c.mu.RLock()
	same := bytes.Equal(pem, c.pem)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return false, fmt.Errorf("codecserver: TLS client CA %s holds no PEM certificate", c.file)
	}
	c.mu.Lock()
	c.pem, c.pool = pem, pool
	c.mu.Unlock()
	return true, nil
}

// Pool returns the current CA pool.
func (c *ClientCAReloader) Pool() *x509.CertPool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.pool
}

// Watch reloads the file every interval until ctx is done, logging changes
// and failures.
func (c *ClientCAReloader) Watch(ctx context.Context, interval time.Duration) {
	reload.Every(ctx, interval, func(time.Time) {
		changed, err := c.Reload()
		switch {
		case err != nil:
			c.logger.Error("TLS client CA reload failed; keeping the old one", "err", err)
		case changed:
			c.logger.Info("TLS client CA reloaded", "file", c.file)
		}
	})
}

// TLSConfigReloading is [TLSConfig] with the client CAs taken from ca at
// each handshake (ca may be nil: no client certificates), so that both the
// serving certificate and the client CA bundle reload.
func TLSConfigReloading(c *CertReloader, ca *ClientCAReloader) (*tls.Config, error) {
	cfg, err := TLSConfig(c, "")
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return cfg, nil
	}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = ca.Pool()
	base := cfg.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hc := base.Clone()
		hc.ClientCAs = ca.Pool()
		return hc, nil
	}
	return cfg, nil
}
