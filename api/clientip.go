package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address a request came from, for the request log.
// It is the connection's peer unless that peer is a trusted proxy
// (Config.TrustedProxies); then it is the right-most X-Forwarded-For entry
// that is not itself a trusted proxy. Entries left of that one were written
// by the client and prove nothing; a client that forges them only names
// itself. A malformed entry stops the walk at the last address known good.
func (s *Server) clientIP(r *http.Request) string {
	if a := s.clientAddr(r); a.IsValid() {
		return a.String()
	}
	return ""
}

// clientNet names the client for the per-address login limit and hashing
// share: its IPv4 address (an IPv4-mapped one unmapped), or the IPv6
// network of Config.IPv6Prefix bits it is in, such as "2001:db8:1:2::/64",
// since a site can take any address of its /64. "" if unknown.
func (s *Server) clientNet(r *http.Request) string {
	a := s.clientAddr(r)
	switch {
	case !a.IsValid():
		return ""
	case a.Is4() || s.ipv6Prefix == 128:
		return a.String()
	}
	return netip.PrefixFrom(a, s.ipv6Prefix).Masked().String()
}

// clientAddr is clientIP as an address, invalid if unknown.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap().WithZone("")
	if !s.trustedProxy(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		addr = a.Unmap().WithZone("")
		if !s.trustedProxy(addr) {
			break
		}
	}
	return addr
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
