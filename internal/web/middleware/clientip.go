package middleware

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r. It is the peer's
// address (RemoteAddr) unless the peer is one of trustedProxies; then it is
// the right-most X-Forwarded-For entry that is not itself a trusted proxy,
// because every entry left of the first untrusted hop may be forged by the
// client. A malformed entry stops the walk at the last trusted hop.
func ClientIP(r *http.Request, trustedProxies []netip.Prefix) string {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return host
	}
	if !trusted(peer, trustedProxies) {
		return peer.String()
	}
	last := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		entries := strings.Split(values[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			addr, err := netip.ParseAddr(strings.TrimSpace(entries[j]))
			if err != nil {
				return last.String()
			}
			addr = addr.Unmap()
			if !trusted(addr, trustedProxies) {
				return addr.String()
			}
			last = addr
		}
	}
	return last.String()
}

func parseHostAddr(hostport string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(hostport); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func trusted(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type clientIPKey struct{}

// RealIP computes ClientIP once per request and stores it in the context for
// ClientIPFrom, the access log, throttling and the audit log.
func RealIP(trustedProxies []netip.Prefix) func(http.Handler) http.Handler {
	prefixes := append([]netip.Prefix(nil), trustedProxies...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := ClientIP(r, prefixes)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		})
	}
}

// ClientIPFrom returns the client IP RealIP stored in ctx, or "".
func ClientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// requestClientIP is ClientIPFrom with a fallback to the peer address.
func requestClientIP(r *http.Request) string {
	if ip := ClientIPFrom(r.Context()); ip != "" {
		return ip
	}
	return ClientIP(r, nil)
}
