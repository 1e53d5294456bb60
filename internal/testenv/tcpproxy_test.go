package testenv

import (
	"bufio"
	"net"
	"slices"
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

// TestTCPProxyBalances: new connections go to the balanced targets in
// turn; a connection open to a target taken out of the pool keeps working.
func TestTCPProxyBalances(t *testing.T) {
	t.Parallel()
	var addrs []string
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
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
						c.Write([]byte(name + "\n"))
					}
				}()
			}
		}()
	}
	p := StartTCPProxy(t, addrs[0])
	p.Balance(addrs...)
	ask := func(c net.Conn) string {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("who\n"))
		s, _ := bufio.NewReader(c).ReadString('\n')
		return s
	}
	var got []string
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		got = append(got, ask(c))
	}
	if want := []string{"a\n", "b\n", "a\n", "b\n"}; !slices.Equal(got, want) {
		t.Fatalf("balanced connections answered %q, want %q", got, want)
	}
	p.Balance(addrs[1])
	if s := ask(conns[0]); s != "a\n" {
		t.Errorf("an open connection to a target out of the pool answered %q, want it kept (a)", s)
	}
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := ask(c); s != "b\n" {
		t.Errorf("a new connection after a is out of the pool went to %q, want b", s)
	}
}
