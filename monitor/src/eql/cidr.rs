//! CIDR blocks, as `cidrMatch` takes them: `10.0.0.0/8`, `fe80::/10`, or a
//! bare address (a block of one). IPv4 addresses written as IPv4-mapped IPv6
//! (`::ffff:10.1.2.3`) count as IPv4, as in Elasticsearch's `ip` fields.
//!
//! Not done yet: nothing known.

use std::net::IpAddr;

/// An IPv4 or IPv6 network, or a single address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Cidr {
    /// `10.0.0.0/8`, `fe80::/10`, or a bare address.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let net = canonical(addr.parse::<IpAddr>().ok()?);
        let bits = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        (prefix <= bits).then_some(Cidr { net, prefix })
    }

    /// True when `ip` is inside the block.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(ip), self.net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(ip: &str, block: &str) -> bool {
        Cidr::parse(block).unwrap().contains(ip.parse().unwrap())
    }

    #[test]
    fn blocks() {
        assert!(inside("192.168.152.12", "192.168.0.0/16"));
        assert!(!inside("192.168.152.12", "10.0.0.0/8"));
        assert!(inside("::ffff:10.1.2.3", "10.0.0.0/8"));
        assert!(inside("fe80::1", "fe80::/10"));
        assert!(!inside("fe80::1", "10.0.0.0/8"));
        assert!(inside("10.0.0.1", "0.0.0.0/0"));
        assert!(inside("10.0.0.1", "10.0.0.1"));
        assert!(!inside("10.0.0.2", "10.0.0.1"));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0.0/x").is_none());
        assert!(Cidr::parse("nope").is_none());
    }
}
