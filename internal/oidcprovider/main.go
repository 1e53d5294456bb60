// Command oidc-provider is a small OpenID Connect provider for the
// end-to-end tests and `make demo-sso`. It is zitadel/oidc's example OpenID
// provider (github.com/zitadel/oidc/v3/example/server: its login page and
// in-memory storage) with three changes:
//
//   - users and clients come from a JSON file (--config);
//   - access tokens are JWTs signed with the keys published at /keys, and
//     carry the user's Temporal permissions in a "permissions" claim
//     (["default:read", ...]); ID tokens do not;
//   - SIGHUP rotates the signing key: a new key with a new "kid" signs from
//     then on, the old one stays published so tokens already issued still
//     verify.
//
// It lives in its own Go module so that the provider library and its
// dependencies stay out of the envelope module's go.mod.
//
// Never use it for real: passwords sit in plain text in the config file and
// every session is lost when it stops.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
)

// Config is the --config file.
type Config struct {
	Clients []ClientConfig `json:"clients"`
	Users   []UserConfig   `json:"users"`
}

// ClientConfig is one OAuth client, e.g. the Temporal UI server.
type ClientConfig struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret"`
	RedirectURIs []string `json:"redirect_uris"`
}

// UserConfig is one user who can sign in on the login page.
type UserConfig struct {
	// ID is the token's "sub".
	ID       string `json:"id"`
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	// Permissions go into the access token's "permissions" claim.
	Permissions []string `json:"permissions"`
}

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("oidc-provider", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9998", "address to listen on")
	issuer := fs.String("issuer", "", "issuer URL, as clients reach it (default: http://<listen>)")
	configFile := fs.String("config", "", "JSON file with the clients and users (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile == "" {
		return errors.New("--config is required")
	}
	if *issuer == "" {
		*issuer = "http://" + *listen
	}
	cfg, err := readConfig(*configFile)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var clients []*exstorage.Client
	for _, c := range cfg.Clients {
		clients = append(clients, exstorage.WebClient(c.ID, c.Secret, c.RedirectURIs...))
	}
	exstorage.RegisterClients(clients...)
	keys, err := newKeyRing()
	if err != nil {
		return err
	}
	st := newStorage(cfg.Users, keys)
	router := exampleop.SetupServer(*issuer, st, logger, false)

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			kid, err := keys.rotate()
			if err != nil {
				logger.Error("rotating the signing key failed", "err", err)
				continue
			}
			logger.Info("signing key rotated", "kid", kid)
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	logger.Info("oidc provider listening", "issuer", *issuer, "addr", l.Addr().String(), "kid", keys.current().id)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

func readConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(cfg.Clients) == 0 || len(cfg.Users) == 0 {
		return nil, fmt.Errorf("config %s: need at least one client and one user", path)
	}
	for _, u := range cfg.Users {
		if u.ID == "" || u.Username == "" || u.Password == "" {
			return nil, fmt.Errorf("config %s: every user needs id, username and password", path)
		}
	}
	return &cfg, nil
}
