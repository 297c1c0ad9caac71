//! Keeps credentials out of everything nc2zarr shows or records: the user part and the
//! signed query of URLs, and the values of secret environment variables.
//!
//! A leaf: the model names staged inputs with [`without_secrets`], and every message
//! passes through [`redact`].

/// `url` (one URL, as given) without a `user:password@` or `token@` part (an
/// `abfs://container@account` stays whole) and, for HTTP(S), without its query (where a
/// presigned URL carries its signature): `?[redacted]`. In object-store URLs `?` is part
/// of the key.
pub fn without_secrets(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
            format!("{scheme}://{}", strip(scheme, rest, http))
        }
        None => url.to_string(),
    }
}

/// Removes credentials from text: URL user parts and query strings (SAS tokens,
/// signatures: in free text any query may be one) and the values of well-known secret
/// environment variables. The part before `@` in `abfs(s)://container@account…` is the
/// container, not a credential, and stays.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            // Not at `,` or `)`: URLs hold them, and what follows could be a signature.
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '>'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let scheme = before[..i]
            .rsplit(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        out.push_str(&strip(scheme, url, true));
        rest = tail;
    }
    out.push_str(rest);
    for var in SECRET_VARS {
        if let Ok(secret) = std::env::var(var)
            && secret.len() >= 8
        {
            out = out.replace(&secret, "[redacted]");
        }
    }
    out
}

/// The part of a URL after `scheme://` without its user part and, when `query` says so,
/// without its query.
fn strip(scheme: &str, rest: &str, query: bool) -> String {
    // The user part first: a password may hold `?` (or `#`), which must not end it.
    let host_end = rest.find('/').unwrap_or(rest.len());
    let keeps_user = scheme.eq_ignore_ascii_case("abfs") || scheme.eq_ignore_ascii_case("abfss");
    let rest = match rest[..host_end].rfind('@') {
        Some(at) if !keeps_user || rest[..at].contains(':') => &rest[at + 1..],
        _ => rest,
    };
    match rest.split_once('?') {
        Some((path, _)) if query => format!("{path}?[redacted]"),
        _ => rest.to_string(),
    }
}

/// Environment variables whose values are secrets.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(without_secrets("https://u:pw@host/a.nc"), "https://host/a.nc");
        assert_eq!(without_secrets("https://tok3n@host/a.nc"), "https://host/a.nc");
        assert_eq!(
            without_secrets("https://host/a.nc?X-Amz-Signature=s"),
            "https://host/a.nc?[redacted]"
        );
        assert_eq!(
            without_secrets("abfss://container@acct.dfs.core.windows.net/a.nc"),
            "abfss://container@acct.dfs.core.windows.net/a.nc"
        );
        assert_eq!(without_secrets("s3://bucket/run#1/a.nc"), "s3://bucket/run#1/a.nc");
        assert_eq!(without_secrets("s3://bucket/run?1/a.nc"), "s3://bucket/run?1/a.nc");
        assert_eq!(
            without_secrets("https://h/a,b.nc?X-Amz-Signature=s"),
            "https://h/a,b.nc?[redacted]"
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact("GET https://acct.blob.core.windows.net/c/x?sv=2021&sig=SECRET failed"),
            "GET https://acct.blob.core.windows.net/c/x?[redacted] failed"
        );
        assert_eq!(redact("s3://AKIA:secret@bucket/key"), "s3://bucket/key");
        assert_eq!(redact("https://token@host/x.nc"), "https://host/x.nc");
        assert_eq!(
            redact("target abfss://data@acct.dfs.core.windows.net/era5.zarr: failed"),
            "target abfss://data@acct.dfs.core.windows.net/era5.zarr: failed"
        );
        assert_eq!(redact("abfs://c:key@acct/x"), "abfs://acct/x");
        assert_eq!(redact("no urls here"), "no urls here");
        assert_eq!(
            redact("GET https://h/a,(b).nc?X-Amz-Signature=S failed"),
            "GET https://h/a,(b).nc?[redacted] failed"
        );
    }

    #[test]
    fn a_password_holding_at_signs_is_removed_whole() {
        // Unencoded `@` in a password is invalid, and still typed: the user part ends
        // at the host's last `@`.
        assert_eq!(redact("s3://AKIA:p@ss@bucket/key"), "s3://bucket/key");
        assert_eq!(without_secrets("https://u:p@ss@host/a.nc"), "https://host/a.nc");
        assert_eq!(redact("see https://host/a@b.nc"), "see https://host/a@b.nc");
        // A `?` in the password does not end the user part.
        assert_eq!(redact("s3://AKIA:p?ss@bucket/k"), "s3://bucket/k");
        assert_eq!(without_secrets("https://u:pa?ss@host/x.nc"), "https://host/x.nc");
    }
}
