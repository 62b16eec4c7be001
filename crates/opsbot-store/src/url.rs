//! Store URLs: which backend a URL names, and how to print one without its password.

use crate::{Result, StoreError};
use std::path::PathBuf;

/// The URL schemes `connect` understands, for error messages.
pub const ACCEPTED_SCHEMES: &str =
    "sqlite://PATH, sqlite::memory:, postgres://, postgresql://, mysql://, mariadb://";

/// Where the pool lives, as parsed from a store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file; relative paths are relative to the working directory.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (tests, throwaway runs).
    SqliteMemory,
    /// The URL as given (the driver parses the rest).
    Postgres(String),
    /// The URL with a `mariadb://` scheme rewritten to `mysql://`, which the driver wants.
    MySql(String),
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let bad = |problem: String| StoreError::BadUrl {
            url: redact(url),
            problem,
        };
        let lower = url.to_ascii_lowercase();
        if lower == "sqlite::memory:" || lower.starts_with("sqlite::memory:?") {
            return Ok(Target::SqliteMemory);
        }
        if let Some(rest) =
            strip_prefix_ci(url, "sqlite://").or_else(|| strip_prefix_ci(url, "sqlite:"))
        {
            // Query parameters (`?mode=rwc`) are accepted and ignored: the file is always
            // opened read-write and created when absent.
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(bad(
                    "the SQLite URL names no file (try sqlite://data/opsbot.db)".into(),
                ));
            }
            return Ok(Target::SqliteFile(PathBuf::from(path)));
        }
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Target::Postgres(url.to_string()));
        }
        if lower.starts_with("mysql://") {
            return Ok(Target::MySql(url.to_string()));
        }
        if let Some(rest) = strip_prefix_ci(url, "mariadb://") {
            return Ok(Target::MySql(format!("mysql://{rest}")));
        }
        Err(bad(format!(
            "unknown scheme; use one of {ACCEPTED_SCHEMES}"
        )))
    }

    /// The name errors use for this backend.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Target::SqliteFile(_) | Target::SqliteMemory => "sqlite",
            Target::Postgres(_) => "postgres",
            Target::MySql(_) => "mysql",
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The URL with any password replaced by `***` (in the user info and in a
/// `password=` query parameter), safe to log and to show to users.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => return redact_query(url),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let host = &authority[at + 1..];
            match userinfo.find(':') {
                Some(colon) => format!("{}:***@{host}", &userinfo[..colon]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    format!("{scheme}{authority}{}", redact_query(tail))
}

fn redact_query(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(
            redact("postgres://h/db?user=u&password=x"),
            "postgres://h/db?user=u&password=***"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn parses_schemes() {
        assert_eq!(
            Target::parse("sqlite::memory:").unwrap(),
            Target::SqliteMemory
        );
        assert_eq!(
            Target::parse("sqlite://data/o.db?mode=rwc").unwrap(),
            Target::SqliteFile("data/o.db".into())
        );
        assert_eq!(
            Target::parse("sqlite:///abs/o.db").unwrap(),
            Target::SqliteFile("/abs/o.db".into())
        );
        assert_eq!(
            Target::parse("mariadb://root@h/db").unwrap(),
            Target::MySql("mysql://root@h/db".into())
        );
        assert_eq!(
            Target::parse("postgresql://h/db").unwrap().backend(),
            "postgres"
        );
        let err = Target::parse("oracle://u:pw@h/db").unwrap_err().to_string();
        assert!(
            err.contains("oracle://u:***@h/db") && err.contains("sqlite://"),
            "{err}"
        );
    }
}
