package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/envelopecodec/envelope/keyconfig"
)

// runHealthcheck implements `codec-server healthcheck [--url URL]`: a GET
// of /healthz for a container HEALTHCHECK in an image without a shell. It
// exits 0 on 200 and 1 otherwise.
func runHealthcheck(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("codec-server healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL to GET (default: http://<--listen of the environment, else 127.0.0.1:8081>/healthz)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	caFile := fs.String("cacert", "", "PEM CA bundle to verify an https:// server")
	certFile := fs.String("cert", "", "PEM client certificate to present (not needed for /healthz or /readyz: with --tls-client-ca only /encode and /decode require one)")
	keyFile := fs.String("key", "", "PEM key of --cert")
	if code, ok := parseCommand(fs, args, nil, stderr); !ok {
		return code
	}
	if *url == "" {
		listen := DefaultConfig().Listen
		if v, ok := lookup(keyconfig.EnvName("listen")); ok && v != "" {
			listen = v
		}
		*url = "http://" + listen + "/healthz"
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server healthcheck:", err)
			return 1
		}
		tcfg.RootCAs = x509.NewCertPool()
		if !tcfg.RootCAs.AppendCertsFromPEM(pem) {
			fmt.Fprintf(stderr, "codec-server healthcheck: --cacert %s holds no PEM certificate\n", *caFile)
			return 1
		}
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(stderr, "codec-server healthcheck:", err)
			return 1
		}
		tcfg.Certificates = []tls.Certificate{cert}
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: tcfg}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server healthcheck:", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "codec-server healthcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "codec-server healthcheck: %s answered %d\n", *url, resp.StatusCode)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}
