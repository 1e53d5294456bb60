// Package loopback holds the project's one check of whether an address
// names this machine, shared by the codec server (--listen, the Host header
// of unauthenticated requests) and the development key policy (the listen
// address, the Temporal address).
package loopback

import (
	"net"
	"net/netip"
	"strings"
)

// Host reports whether host, a host name or address with or without a port
// ("localhost:8081", "[::1]", "127.0.0.1"), is "localhost" in any case or a
// loopback IP address (127.0.0.0/8, ::1, ::ffff:127.0.0.1). An IPv6
// address with a zone is not loopback.
func Host(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}
