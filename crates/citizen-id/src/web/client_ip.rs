//! The client's address as this service's own proxies saw it.
//!
//! `X-Forwarded-For` is a list every hop appends to, and its left end is written by the client:
//! trusting it lets anyone choose the address that per-IP limits count and the audit log keeps.
//! The rule (OWASP ASVS 5.0 4.1.3: a header an intermediary sets, such as `X-Forwarded-*`, must
//! not be one the end user can override; the right-to-left walk of MDN's `X-Forwarded-For` page
//! and nginx's `real_ip_recursive`):
//!
//! - When the TCP peer is not a configured trusted proxy, the header is ignored: the peer is the
//!   client.
//! - When it is, the header's hops are read from the right (header lines joined in order, as
//!   RFC 9110 5.3 combines them), each trusted hop is skipped, and the first hop that is not
//!   trusted is the client. When every hop is trusted, the leftmost one is.
//! - A hop that is not an IP address (`unknown`, an obfuscated RFC 7239 identifier, garbage)
//!   ends the walk: the request is put down to the last address that was vouched for (the
//!   trusted proxy that wrote the hop, or the peer), never to text a client may have written.
//!   Empty list elements are skipped (RFC 9110 5.6.1). A hop may carry a port (`1.2.3.4:5678`,
//!   `[2001:db8::1]:443`), which is dropped.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, from a dual-stack listener) are read as the
//! IPv4 address they carry, for peers, hops and configured ranges alike.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address range: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`), or a
/// single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(u32::from(net).into(), self.prefix, 32) == masked(u32::from(ip).into(), self.prefix, 32),
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), self.prefix, 128) == masked(u128::from(ip), self.prefix, 128),
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 { 0 } else { bits >> (width - prefix) }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let bad = || format!("{text:?} is not an IP address or CIDR range (like 10.0.0.0/8 or 2001:db8::/32)");
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address = IpAddr::from_str(address).map_err(|_| bad())?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // Digits only: `u8::from_str` would take "+8".
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
            None => width,
        };
        if prefix > width {
            return Err(format!("{text:?}: the prefix length must be at most {width}"));
        }
        // An IPv4-mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
        match address.to_canonical() {
            IpAddr::V4(v4) if address.is_ipv6() && prefix >= 96 => Ok(Cidr { network: IpAddr::V4(v4), prefix: prefix - 96 }),
            _ => Ok(Cidr { network: address, prefix }),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies in front of this service whose `X-Forwarded-For` hops are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses each entry; the first bad one is refused, naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries.iter().map(|e| e.as_ref().parse::<Cidr>()).collect::<Result<Vec<_>, _>>().map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address for a request from `peer` carrying `headers` (the module's rule).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let lines: Vec<&[u8]> = headers.get_all("x-forwarded-for").iter().map(|v| v.as_bytes()).collect();
        let mut vouched = peer;
        for line in lines.iter().rev() {
            // Not text: nothing in it can be read, so nothing in it is believed.
            let Ok(line) = std::str::from_utf8(line) else { return vouched };
            for hop in line.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
                let Some(ip) = hop_address(hop) else { return vouched };
                if !self.trusts(ip) {
                    return ip;
                }
                vouched = ip;
            }
        }
        vouched
    }
}

/// The address of one `X-Forwarded-For` hop, with any port dropped.
fn hop_address(hop: &str) -> Option<IpAddr> {
    IpAddr::from_str(hop)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[').and_then(|h| h.strip_suffix(']')).and_then(|h| h.parse().ok()))
        .map(|ip: IpAddr| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", HeaderValue::from_str(l).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_parse_and_match() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", " 172.16.0.0/12 "]);
        for inside in ["10.1.2.3", "192.0.2.7", "2001:db8:1::5", "172.31.255.255", "::ffff:10.9.9.9"] {
            assert!(p.trusts(ip(inside)), "{inside}");
        }
        for outside in ["11.0.0.1", "192.0.2.8", "2001:db9::1", "172.32.0.0", "::1", "::ffff:11.0.0.1"] {
            assert!(!p.trusts(ip(outside)), "{outside}");
        }
        assert!(proxies(&["0.0.0.0/0"]).trusts(ip("203.0.113.9")));
        assert!(!proxies(&["0.0.0.0/0"]).trusts(ip("2001:db8::1")), "an IPv4 range never holds an IPv6 address");
        assert!(proxies(&["::ffff:127.0.0.0/104"]).trusts(ip("127.0.0.1")), "a mapped range is read as IPv4");
        assert_eq!("10.1.2.3/8".parse::<Cidr>().unwrap().to_string(), "10.1.2.3/8");
        for bad in ["", "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/8/8", "localhost", "*"] {
            let err = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad}: {err}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(p.client_ip(ip("203.0.113.5"), &headers(&["10.0.0.1", "198.51.100.1"])), ip("203.0.113.5"));
        assert_eq!(TrustedProxies::default().client_ip(ip("127.0.0.1"), &headers(&["198.51.100.1"])), ip("127.0.0.1"));
    }

    #[test]
    fn the_walk_skips_trusted_hops_from_the_right() {
        let p = proxies(&["10.0.0.0/8", "2001:db8:ff::/48"]);
        let peer = ip("10.0.0.2");
        let cases: &[(&[&str], &str)] = &[
            // One proxy, which appended the address it saw to what the client sent.
            (&["198.51.100.7"], "198.51.100.7"),
            (&["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
            // Two proxies: the outer one's address is trusted and skipped.
            (&["1.2.3.4, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),
            // A client pretending to be a proxy at the left end gains nothing.
            (&["10.0.0.5, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),
            // Header lines in order, as one list.
            (&["1.2.3.4", "198.51.100.7", "10.0.0.9"], "198.51.100.7"),
            (&["1.2.3.4, 198.51.100.7", "10.0.0.9"], "198.51.100.7"),
            // Every hop trusted: the leftmost.
            (&["10.0.0.7, 10.0.0.9"], "10.0.0.7"),
            // No header, or an empty one: the peer.
            (&[], "10.0.0.2"),
            (&["", " , "], "10.0.0.2"),
            // Empty elements are skipped; ports dropped; IPv6 and mapped IPv4 read.
            (&["1.2.3.4,, 198.51.100.7:5678 ,"], "198.51.100.7"),
            (&["[2001:db8::1]:443, 2001:db8:ff::1"], "2001:db8::1"),
            (&["[2001:db8::1]"], "2001:db8::1"),
            (&["::ffff:198.51.100.7"], "198.51.100.7"),
            // Garbage stops the walk at the last vouched-for address.
            (&["198.51.100.7, unknown"], "10.0.0.2"),
            (&["198.51.100.7, _hidden, 10.0.0.9"], "10.0.0.9"),
            (&["1.2.3.4, 198.51.100.7", "garbage"], "10.0.0.2"),
            // ... but garbage left of the client is never reached.
            (&["<script>, 198.51.100.7"], "198.51.100.7"),
        ];
        for (lines, want) in cases {
            assert_eq!(p.client_ip(peer, &headers(lines)), ip(want), "{lines:?}");
        }
        // A dual-stack listener's view of a trusted IPv4 peer.
        assert_eq!(p.client_ip(ip("::ffff:10.0.0.2"), &headers(&["198.51.100.7"])), ip("198.51.100.7"));
    }

    #[test]
    fn a_header_that_is_not_text_is_not_believed() {
        let p = proxies(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"198.51.100.7, \xff").unwrap());
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }
}
