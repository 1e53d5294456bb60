package testenv

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestTCPProxyHoldsAndReleases: through the proxy an echo server answers;
// while held, a new connection is accepted and gets no answer; once
// released, the held bytes arrive.
func TestTCPProxyHoldsAndReleases(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write([]byte(sc.Text() + "\n"))
				}
			}()
		}
	}()
	p := StartTCPProxy(t, ln.Addr().String())
	echo := func(c net.Conn, msg string, wait time.Duration) (string, error) {
		c.SetDeadline(time.Now().Add(wait))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		return bufio.NewReader(c).ReadString('\n')
	}
	c1, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if got, err := echo(c1, "one", 10*time.Second); err != nil || got != "one\n" {
		t.Fatalf("through the proxy: %q %v", got, err)
	}

	p.Hold()
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatalf("a held proxy must still accept: %v", err)
	}
	defer c2.Close()
	if got, err := echo(c2, "two", 300*time.Millisecond); err == nil {
		t.Fatalf("a held proxy answered %q", got)
	}
	p.Release()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after Release: %q %v, want the held bytes answered", got, err)
	}
}
