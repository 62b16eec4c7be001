//! `opsbot token`: issue, list and revoke API and agent tokens. The token text is printed
//! once, on stdout alone, so `TOKEN=$(opsbot token create …)` works; everything else
//! goes to stderr.

use crate::config::{parse_duration, Config};
use crate::out::outln;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use opsbot_auth::{parse_cidr, TokenKind, TokenRequest, Tokens};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token. API tokens act as a configured user with that user's roles;
    /// agent tokens (--agent) let `opsbot agent` report host facts.
    Create {
        #[arg(long)]
        config: Option<PathBuf>,
        /// The user the API token acts as (a `[[users]]` id of the configuration).
        #[arg(long, required_unless_present = "agent")]
        user: Option<String>,
        /// Issue an agent token instead of an API token.
        #[arg(long, conflicts_with = "user")]
        agent: bool,
        /// Agent tokens: the one host identity the token may report as (default: any,
        /// pinned by the CMDB on first report).
        #[arg(long, requires = "agent")]
        host: Option<String>,
        /// Lifetime: `90s`, `12h`, `30d`.
        #[arg(long, default_value = "30d")]
        ttl: String,
        /// Only accept the token from these addresses (repeatable; CIDR or address).
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ip: Vec<String>,
        /// A note shown by `token list` (what the token is for).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List issued tokens (never their secret part).
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Revoke a token by its id (the third dot-separated part, shown by `token list`).
    Revoke {
        #[arg(long)]
        config: Option<PathBuf>,
        id: String,
    },
    /// Replace the secret key that signs tokens and web logins: a new key file (or the
    /// new value of $OPSBOT_SECRET_KEY), every issued token revoked, every web login
    /// ended. Copy the new key to every instance and restart them.
    RotateKey {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Yes, end every token and web login now.
        #[arg(long)]
        yes: bool,
    },
}

async fn store(config: &Config) -> Result<std::sync::Arc<dyn opsbot_store::Store>> {
    opsbot_store::connect(&config.store.url)
        .await
        .context("opening the store")
}

/// The tokens of the configured store, signed with the secret key (made on first use).
async fn open(config_file: Option<&Path>) -> Result<(Config, Tokens)> {
    let config = Config::load(config_file)?;
    let store = store(&config).await?;
    let secret = crate::app::secret_key(&config, store.as_ref()).await?;
    Ok((config, Tokens::new(store, &secret)))
}

pub async fn run(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create {
            config,
            user,
            agent,
            host,
            ttl,
            allow_ip,
            label,
        } => {
            let ttl = parse_duration(&ttl)
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--ttl {ttl}: expected a lifetime like 12h or 30d"))?;
            let allow_ips = allow_ip
                .iter()
                .map(|c| parse_cidr(c).map_err(|e| anyhow::anyhow!("--allow-ip: {e}")))
                .collect::<Result<Vec<_>>>()?;
            let (config, tokens) = open(config.as_deref()).await?;
            let (kind, subject) = if agent {
                (TokenKind::Agent, host.unwrap_or_default())
            } else {
                let user = user.unwrap_or_default();
                if !config.users.iter().any(|u| u.id == user) {
                    bail!(
                        "user {user:?} has no [[users]] entry in the configuration: \
                         the token could do nothing"
                    );
                }
                (TokenKind::Api, user)
            };
            let issued = tokens
                .issue(&TokenRequest {
                    kind,
                    subject: subject.clone(),
                    ttl,
                    allow_ips: allow_ips.clone(),
                    label,
                })
                .await?;
            let from = if allow_ips.is_empty() {
                "anywhere".to_string()
            } else {
                allow_ips
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            eprintln!(
                "{} token {} for {} — expires {}, usable from {from}. Shown once: keep it safe.",
                kind.as_str(),
                issued.token_id,
                if subject.is_empty() {
                    "any host"
                } else {
                    &subject
                },
                issued.expires_at.format("%Y-%m-%d %H:%M UTC"),
            );
            outln!("{}", issued.token);
        }
        TokenCmd::List { config } => {
            // Listing and revoking need no key: they work even while it is missing.
            let store = store(&Config::load(config.as_deref())?).await?;
            let now = chrono::Utc::now();
            outln!("ID                KIND   SUBJECT          STATE     EXPIRES           LAST USED         ALLOW         LABEL");
            for t in store.token_list().await? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "active"
                };
                let when = |d: Option<chrono::DateTime<chrono::Utc>>| {
                    d.map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "-".into())
                };
                let allow = if t.allow_ips.is_empty() {
                    "*".to_string()
                } else {
                    t.allow_ips.join(",")
                };
                outln!(
                    "{:<17} {:<6} {:<16} {:<9} {:<17} {:<17} {:<13} {}",
                    t.token_id,
                    t.kind,
                    if t.subject.is_empty() {
                        "*"
                    } else {
                        &t.subject
                    },
                    state,
                    when(Some(t.expires_at)),
                    when(t.last_used_at),
                    allow,
                    t.label
                );
            }
        }
        TokenCmd::Revoke { config, id } => {
            let store = store(&Config::load(config.as_deref())?).await?;
            if !store.token_revoke(&id).await? {
                bail!("no active token with id {id:?} (see `opsbot token list`)");
            }
            eprintln!("token {id} revoked");
        }
        TokenCmd::RotateKey { config, yes } => {
            let config = Config::load(config.as_deref())?;
            let source = config.security.key_source();
            if !yes {
                bail!(
                    "rotating the secret key ends every API and agent token and every web \
                     login at once; run again with --yes to do it"
                );
            }
            let store = store(&config).await?;
            let done = opsbot_auth::secret::rotate(&source, store.as_ref()).await?;
            eprintln!(
                "new secret key in {} (check {}); {} token(s) revoked.\n\
                 Next: give every opsbot instance of this store the same key (copy the file, \
                 or set $OPSBOT_SECRET_KEY) and restart them; an instance with the old key \
                 refuses to start. Old tokens and web logins are refused from now on: \
                 issue new ones with `opsbot token create --user ID` / \
                 `opsbot token create --agent [--host NAME]` and give agents theirs \
                 (OPSBOT_AGENT_TOKEN).",
                done.origin,
                done.key.check(),
                done.revoked,
            );
        }
    }
    Ok(())
}
