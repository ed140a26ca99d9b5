//! What a URL may carry: credentials travel only over TLS, or in plain HTTP to this machine (the
//! local stack's stand-ins).

/// Whether the URL's host is this machine; none when it has no host.
pub fn is_loopback(url: &url::Url) -> Option<bool> {
    Some(match url.host()? {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(address) => address.is_loopback(),
        url::Host::Ipv6(address) => address.is_loopback(),
    })
}

/// Why a URL that will carry credentials is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("it is not a URL")]
    NotAUrl,
    #[error("it has no host")]
    NoHost,
    #[error(
        "it is plain http to another machine: credentials would cross the network unencrypted; use https"
    )]
    Plaintext,
    #[error("its scheme is {0}, not https")]
    Scheme(String),
}

/// The URL, if it is https, or http to this machine.
pub fn tls_or_loopback(text: &str) -> Result<url::Url, UrlRefusal> {
    let url = url::Url::parse(text).map_err(|_| UrlRefusal::NotAUrl)?;
    let loopback = is_loopback(&url).ok_or(UrlRefusal::NoHost)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(UrlRefusal::Plaintext),
        other => Err(UrlRefusal::Scheme(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_over_tls_or_stay_on_this_machine() {
        assert!(tls_or_loopback("https://tripletex.no/v2").is_ok());
        assert!(tls_or_loopback("http://127.0.0.1:8700/v2").is_ok());
        assert!(tls_or_loopback("http://localhost:8700/v2").is_ok());
        assert!(tls_or_loopback("http://[::1]:8700/v2").is_ok());
        assert_eq!(
            tls_or_loopback("http://tripletex.no/v2"),
            Err(UrlRefusal::Plaintext)
        );
        assert_eq!(
            tls_or_loopback("ftp://tripletex.no/v2"),
            Err(UrlRefusal::Scheme("ftp".into()))
        );
        assert_eq!(tls_or_loopback("tripletex.no"), Err(UrlRefusal::NotAUrl));
    }
}
