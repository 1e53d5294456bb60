package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// TCPProxy forwards TCP connections on a loopback port to a target
// address. Hold makes it a server that accepts and never answers, as a
// hung Vault or a black-holed network path does: new connections are
// accepted and not forwarded, and bytes on open connections stop flowing.
// Release lets everything flow again. SetTarget switches the target for
// new connections (a load balancer moving to another backend); Balance
// spreads new connections over several (a load balancer's pool).
type TCPProxy struct {
	Addr string // host:port to dial instead of the target

	ln      net.Listener
	mu      sync.Mutex
	targets []string // new connections go to each in turn
	next    int
	held    chan struct{} // closed while not holding
	conns   map[net.Conn]struct{}
	closed  bool
}

// StartTCPProxy starts a proxy to target on a free loopback port and
// stops it when the test ends.
func StartTCPProxy(t testing.TB, target string) *TCPProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: tcp proxy: %v", err)
	}
	p := &TCPProxy{Addr: ln.Addr().String(), ln: ln, targets: []string{target}, held: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.held)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Hold stops forwarding: connections are accepted and held open.
func (p *TCPProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.held:
		p.held = make(chan struct{})
	default:
	}
}

// Release forwards again, held bytes included.
func (p *TCPProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.held:
	default:
		close(p.held)
	}
}

// SetTarget sends new connections to target; open ones are closed, as a
// load balancer does when a backend leaves.
func (p *TCPProxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = []string{target}
	for c := range p.conns {
		c.Close()
	}
}

// Balance sends new connections to targets in turn (round robin). Open
// connections stay: a load balancer that takes a backend out of its pool
// lets the connections it has finish. With no targets nothing changes.
func (p *TCPProxy) Balance(targets ...string) {
	if len(targets) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.targets = append([]string(nil), targets...)
}

// Close stops the proxy and closes its connections.
func (p *TCPProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.Release()
}

// gate returns a channel that is closed while the proxy forwards.
func (p *TCPProxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *TCPProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		if p.closed {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *TCPProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *TCPProxy) handle(c net.Conn) {
	if !p.track(c, true) {
		c.Close()
		return
	}
	defer p.track(c, false)
	defer c.Close()
	<-p.gate()
	p.mu.Lock()
	target := p.targets[p.next%len(p.targets)]
	p.next++
	p.mu.Unlock()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	if !p.track(up, true) {
		up.Close()
		return
	}
	defer p.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c); done <- struct{}{} }()
	go func() { p.copy(c, up); done <- struct{}{} }()
	<-done
}

// copy moves bytes from src to dst, waiting at the gate before each write.
func (p *TCPProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
