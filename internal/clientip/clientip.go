// Package clientip decides which address a request comes from, and whether
// it reached us over TLS: the TCP peer and its connection, unless the peer
// is a configured trusted proxy, in which case the proxy's forwarding
// headers name the client and the scheme it used. It is the one place
// where X-Forwarded-For, X-Forwarded-Proto and Forwarded (RFC 7239) are
// read; every consumer reads the resolved address from
// http.Request.RemoteAddr (the aws:SourceIp condition key, audit source
// addresses, logs) and the transport from SecureTransport
// (aws:SecureTransport) after Handler has run. See
// docs/design/0010-s3-gateway.md, "Transport and source identity".
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Headers a trusted proxy may use to name the client, and (with
// X-Forwarded-For) the scheme the client used.
const (
	HeaderXForwardedFor   = "X-Forwarded-For"
	HeaderXForwardedProto = "X-Forwarded-Proto"
	HeaderForwarded       = "Forwarded"
)

// maxHops bounds how many forwarding hops are examined; a chain longer than
// that resolves to Unknown.
const maxHops = 32

// Unknown is the address reported when a trusted proxy forwarded a hop that
// is not an IP address (RFC 7239 "unknown" or an obfuscated identifier, or
// garbage). It matches no aws:SourceIp allow-list short of 0.0.0.0/0 and
// trips every NotIpAddress deny guard: an unknowable client is never taken
// for an internal one.
var Unknown = netip.IPv4Unspecified()

// Resolver resolves client addresses. The zero value trusts no proxy: the
// peer address is always the client. Safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
	header  string // canonical header name, HeaderXForwardedFor or HeaderForwarded
}

// New parses a comma-separated list of trusted proxy addresses or CIDR
// prefixes (e.g. "10.0.0.0/8, 192.0.2.7") and the forwarding header those
// proxies set ("X-Forwarded-For", the default when empty, or "Forwarded").
// Only that header is read: a proxy that sets X-Forwarded-For passes a
// client's own Forwarded header through untouched, so reading both would
// let the client choose its address.
func New(trusted, header string) (*Resolver, error) {
	r := &Resolver{header: HeaderXForwardedFor}
	switch {
	case header == "" || strings.EqualFold(header, HeaderXForwardedFor):
	case strings.EqualFold(header, HeaderForwarded):
		r.header = HeaderForwarded
	default:
		return nil, fmt.Errorf("clientip: header must be %s or %s, got %q", HeaderXForwardedFor, HeaderForwarded, header)
	}
	for _, s := range strings.Split(trusted, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("clientip: %q is not an address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("clientip: %q is not an address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Trusts reports whether a is a trusted proxy.
func (r *Resolver) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address of req: the peer address if the peer is
// not a trusted proxy (forwarding headers are then ignored); otherwise the
// right-most hop of the forwarding header that is not itself a trusted
// proxy, walking from the peer leftwards. A chain made only of trusted
// proxies resolves to its left-most hop. A hop that is not an IP address,
// or a chain longer than maxHops, resolves to Unknown. An unparseable peer
// address (not from a TCP listener) is returned as Unknown too.
func (r *Resolver) Client(req *http.Request) netip.Addr {
	a, _ := r.resolve(req)
	return a
}

// Secure reports whether req's client reached us over TLS: for a peer that
// is not a trusted proxy, whether req came over TLS (req.TLS); for a
// trusted proxy, what the forwarding headers say of the hops from the
// client to the peer (see secure). It never believes a header from an
// untrusted peer.
func (r *Resolver) Secure(req *http.Request) bool {
	_, s := r.resolve(req)
	return s
}

// resolve returns the client address (see Client) and whether the client
// used TLS (see Secure).
func (r *Resolver) resolve(req *http.Request) (netip.Addr, bool) {
	direct := req.TLS != nil
	peer, ok := peerAddr(req.RemoteAddr)
	if !ok {
		return Unknown, false
	}
	if !r.Trusts(peer) {
		return peer, direct
	}
	hops := r.hops(req.Header)
	if len(hops) > maxHops {
		return Unknown, false
	}
	client, first := peer, len(hops)
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i].addr)
		if !ok {
			return Unknown, false
		}
		client, first = a, i
		if !r.Trusts(a) {
			break
		}
	}
	return client, r.secure(req, hops[first:], direct)
}

// secure decides the transport of a request a trusted proxy forwarded,
// from the proto values of the walked hops (Forwarded) or of every
// X-Forwarded-Proto value (their order is not tied to X-Forwarded-For's):
// it is TLS only if there is at least one value and every one is https,
// so that a client's own "https" never outweighs an "http" its proxy
// added. A proxy that says nothing of the scheme leaves the answer to our
// own connection with it (direct).
func (r *Resolver) secure(req *http.Request, walked []hop, direct bool) bool {
	var protos []string
	if r.header == HeaderForwarded {
		for _, h := range walked {
			if h.proto != "" {
				protos = append(protos, h.proto)
			}
		}
	} else {
		protos = r.forwardedProtos(req.Header)
	}
	if len(protos) == 0 {
		return direct
	}
	if len(protos) > maxHops {
		return false
	}
	for _, p := range protos {
		if !strings.EqualFold(p, "https") {
			return false
		}
	}
	return true
}

// forwardedProtos lists the X-Forwarded-Proto values across every line of
// the header, stopping after maxHops+1.
func (r *Resolver) forwardedProtos(h http.Header) []string {
	var out []string
	for _, line := range h.Values(HeaderXForwardedProto) {
		for _, v := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(v))
			if len(out) > maxHops {
				return out
			}
		}
	}
	return out
}

// Handler returns next with req.RemoteAddr replaced by the resolved client
// address (port 0 when it came from a forwarding header) and, for requests
// from a trusted proxy, the client's transport recorded for
// SecureTransport. It must be the outermost layer of a listener, before
// anything reads RemoteAddr or SecureTransport.
func (r *Resolver) Handler(next http.Handler) http.Handler {
	if len(r.trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		peer, _ := peerAddr(req.RemoteAddr)
		c, secure := r.resolve(req)
		if secure != (req.TLS != nil) {
			req = req.WithContext(WithSecureTransport(req.Context(), secure))
		}
		if c != peer {
			req = req.Clone(req.Context())
			req.RemoteAddr = netip.AddrPortFrom(c, 0).String()
		}
		next.ServeHTTP(w, req)
	})
}

type secureKey struct{}

// WithSecureTransport returns ctx recording whether the client's request
// came over TLS, for SecureTransport. Handler sets it; an in-process call
// made on a client's behalf passes the client's value on with it.
func WithSecureTransport(ctx context.Context, secure bool) context.Context {
	return context.WithValue(ctx, secureKey{}, secure)
}

// SecureTransport reports whether the client's request came over TLS: the
// transport Handler resolved for a request from a trusted proxy, else
// whether req itself came over TLS. It is the value of aws:SecureTransport.
func SecureTransport(req *http.Request) bool {
	if v, ok := req.Context().Value(secureKey{}).(bool); ok {
		return v
	}
	return req.TLS != nil
}

// peerAddr parses the host of a host:port RemoteAddr.
func peerAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// hop is one forwarding hop: the address it names and, from a Forwarded
// element, the scheme of the request it forwarded (proto=).
type hop struct{ addr, proto string }

// hops lists the forwarding header's hops, client first, across every
// line of the header.
func (r *Resolver) hops(h http.Header) []hop {
	var out []hop
	for _, line := range h.Values(r.header) {
		for _, elem := range strings.Split(line, ",") {
			elem = strings.TrimSpace(elem)
			hp := hop{addr: elem}
			if r.header == HeaderForwarded {
				hp = hop{addr: forwardedParam(elem, "for"), proto: forwardedParam(elem, "proto")}
			}
			out = append(out, hp)
			if len(out) > maxHops {
				return out
			}
		}
	}
	return out
}

// forwardedParam returns the value of parameter name (for, proto) of one
// forwarded-element (RFC 7239 §4), unquoted, or "" if it has none.
func forwardedParam(elem, name string) string {
	for _, pair := range strings.Split(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// parseHop parses one hop: an IPv4 or IPv6 address, optionally with a port
// ("192.0.2.1:80", "[2001:db8::1]:443") or in brackets ("[2001:db8::1]").
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}
