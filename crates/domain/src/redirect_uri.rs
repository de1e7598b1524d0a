//! A partner's registered redirect URI (interface specification section 7,
//! "Client Redirects").
//!
//! The rules are those of the reference: exact match only, no wildcards, no
//! query string, https only. We add one allowance, plain http to the
//! loopback host, so a partner can develop against a sandpit on their own
//! machine (RFC 8252 section 7.3). Parsing is strict because a lax redirect
//! URI is how authorization codes get stolen: characters browsers treat
//! loosely (backslash, whitespace) and user-info before the host are refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest redirect URI we accept, to keep stored and logged values bounded.
pub const MAX_REDIRECT_URI_CHARS: usize = 2000;

/// Why some text cannot be a redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RedirectUriError {
    #[error("Enter a redirect URI")]
    Empty,
    #[error("The redirect URI must be 2000 characters or fewer")]
    TooLong,
    #[error("The redirect URI contains a space or a character that is not allowed in a URI")]
    InvalidCharacters,
    #[error("The redirect URI must be a full address starting with https://")]
    NotAbsolute,
    #[error("The redirect URI must start with https:// (http:// is only allowed for localhost)")]
    InsecureScheme,
    #[error("The redirect URI must not contain a * wildcard")]
    Wildcard,
    #[error("The redirect URI must not contain a query string (a ? and what follows)")]
    HasQuery,
    #[error("The redirect URI must not contain a fragment (a # and what follows)")]
    HasFragment,
    #[error(
        "The redirect URI must have a valid host name, like https://service.example.nhs.uk/callback"
    )]
    InvalidHost,
    #[error("The redirect URI has a port that is not a number from 1 to 65535")]
    InvalidPort,
}

/// A redirect URI that is safe to register and redirect to. Two redirect
/// URIs match only when their text is identical.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

/// Characters RFC 3986 never allows in a URI, plus '\', which browsers
/// treat as '/' and so can move the host of an otherwise valid URI.
fn is_forbidden(c: char) -> bool {
    !c.is_ascii_graphic() || matches!(c, '\\' | '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`')
}

impl RedirectUri {
    /// Parses a redirect URI exactly as given: no trimming or case folding,
    /// because the authorize request must later match it byte for byte.
    pub fn parse(input: &str) -> Result<Self, RedirectUriError> {
        if input.is_empty() {
            return Err(RedirectUriError::Empty);
        }
        if input.chars().count() > MAX_REDIRECT_URI_CHARS {
            return Err(RedirectUriError::TooLong);
        }
        if input.chars().any(is_forbidden) {
            return Err(RedirectUriError::InvalidCharacters);
        }
        if input.contains('*') {
            return Err(RedirectUriError::Wildcard);
        }
        if input.contains('#') {
            return Err(RedirectUriError::HasFragment);
        }
        if input.contains('?') {
            return Err(RedirectUriError::HasQuery);
        }
        let (scheme, rest) = input
            .split_once("://")
            .ok_or(RedirectUriError::NotAbsolute)?;
        if !is_scheme(scheme) {
            return Err(RedirectUriError::NotAbsolute);
        }
        let host = host_of(rest.split('/').next().unwrap_or_default())?;
        match scheme.to_ascii_lowercase().as_str() {
            "https" => {}
            "http" if is_loopback(host) => {}
            _ => return Err(RedirectUriError::InsecureScheme),
        }
        Ok(Self(input.to_owned()))
    }

    /// The URI exactly as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` (a `redirect_uri` from an authorize or token
    /// request) is this URI: exact string equality, as the spec requires.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0 == candidate
    }

    /// Whether this URI points at the partner's own machine.
    pub fn is_loopback(&self) -> bool {
        self.0
            .split_once("://")
            .and_then(|(_, rest)| host_of(rest.split('/').next().unwrap_or_default()).ok())
            .is_some_and(is_loopback)
    }
}

/// RFC 3986 scheme: a letter, then letters, digits, '+', '-' or '.'.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// The host of an authority ("host" or "host:port"), checking both parts.
/// User-info ("user@host") is refused: it only serves to disguise the host.
fn host_of(authority: &str) -> Result<&str, RedirectUriError> {
    if authority.contains('@') {
        return Err(RedirectUriError::InvalidHost);
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(RedirectUriError::InvalidHost)?;
        let (host, after) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
        {
            return Err(RedirectUriError::InvalidHost);
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(RedirectUriError::InvalidHost)?,
                ),
            ),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(RedirectUriError::InvalidHost);
        }
        (host, port)
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.chars().all(|c| c.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(RedirectUriError::InvalidPort);
        }
    }
    Ok(host)
}

string_conversions!(RedirectUri, RedirectUriError);

#[cfg(test)]
mod tests {
    use super::*;
    use RedirectUriError::*;

    #[test]
    fn parse_table() {
        let long = format!("https://example.com/{}", "a".repeat(1981));
        let max = format!("https://example.com/{}", "a".repeat(1980));
        let cases: Vec<(&str, Result<(), RedirectUriError>)> = vec![
            ("https://client.example.org/cb", Ok(())),
            ("https://client.example.org", Ok(())),
            ("https://client.example.org:8443/a/b.c;x=1", Ok(())),
            ("HTTPS://Client.Example.org/cb", Ok(())),
            ("http://localhost:3000/callback", Ok(())),
            ("http://127.0.0.1/cb", Ok(())),
            ("http://[::1]:8080/cb", Ok(())),
            ("https://[2001:db8::1]/cb", Ok(())),
            ("https://client.example.org/cb%20x", Ok(())),
            (&max, Ok(())),
            ("", Err(Empty)),
            (&long, Err(TooLong)),
            (" https://client.example.org/cb", Err(InvalidCharacters)),
            ("https://client.example.org/c b", Err(InvalidCharacters)),
            (
                "https://client.example.org\\@evil.example/",
                Err(InvalidCharacters),
            ),
            ("https://client.exämple.org/cb", Err(InvalidCharacters)),
            ("https://*.example.org/cb", Err(Wildcard)),
            ("https://client.example.org/cb#frag", Err(HasFragment)),
            ("https://client.example.org/cb?x=1", Err(HasQuery)),
            ("https://client.example.org/cb?", Err(HasQuery)),
            ("client.example.org/cb", Err(NotAbsolute)),
            ("/cb", Err(NotAbsolute)),
            ("1https://client.example.org/cb", Err(NotAbsolute)),
            ("http://client.example.org/cb", Err(InsecureScheme)),
            ("http://localhost.evil.example/cb", Err(InsecureScheme)),
            ("com.example.app://callback", Err(InsecureScheme)),
            ("https:///cb", Err(InvalidHost)),
            ("https://user@client.example.org/cb", Err(InvalidHost)),
            ("https://client..example.org/cb", Err(InvalidHost)),
            ("https://-client.example.org/cb", Err(InvalidHost)),
            ("https://[::1/cb", Err(InvalidHost)),
            ("https://[zz]/cb", Err(InvalidHost)),
            ("https://client.example.org:/cb", Err(InvalidPort)),
            ("https://client.example.org:0/cb", Err(InvalidPort)),
            ("https://client.example.org:65536/cb", Err(InvalidPort)),
            ("https://client.example.org:80a/cb", Err(InvalidPort)),
        ];
        for (input, expected) in cases {
            let got = RedirectUri::parse(input);
            assert_eq!(
                got.as_ref().map(|_| ()).map_err(|e| *e),
                expected,
                "input {input:?}"
            );
            if let Ok(uri) = got {
                assert_eq!(uri.as_str(), input, "stored exactly as given");
            }
        }
    }

    #[test]
    fn matching_is_exact() {
        let uri = RedirectUri::parse("https://client.example.org/cb").unwrap();
        assert!(uri.matches("https://client.example.org/cb"));
        assert!(!uri.matches("https://client.example.org/cb/"));
        assert!(!uri.matches("https://CLIENT.example.org/cb"));
        assert!(!uri.matches("https://client.example.org/cb?x=1"));
    }

    #[test]
    fn loopback() {
        assert!(
            RedirectUri::parse("http://localhost:3000/cb")
                .unwrap()
                .is_loopback()
        );
        assert!(
            RedirectUri::parse("https://[::1]/cb")
                .unwrap()
                .is_loopback()
        );
        assert!(
            !RedirectUri::parse("https://example.org/cb")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn serde_goes_through_parse() {
        let uri: RedirectUri = serde_json::from_str("\"https://a.example/cb\"").unwrap();
        assert_eq!(
            serde_json::to_string(&uri).unwrap(),
            "\"https://a.example/cb\""
        );
        assert!(serde_json::from_str::<RedirectUri>("\"http://a.example/cb\"").is_err());
    }
}
