//! Where emails go: an SMTP server named by `SMTP_URL`, or `.eml` files in a directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::configuration::Settings;

/// Longest wait for any one SMTP command.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
enum TlsMode {
    Implicit,
    StartTls,
    Opportunistic,
    None,
}

impl TlsMode {
    fn label(self) -> &'static str {
        match self {
            Self::Implicit => "implicit TLS",
            Self::StartTls => "STARTTLS",
            Self::Opportunistic => "STARTTLS when offered",
            Self::None => "no TLS",
        }
    }
}

#[derive(Clone)]
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Scheme, host, port and TLS mode: never the credentials.
        description: String,
    },
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why a message was not sent; `permanent` when trying again cannot help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

impl Transport {
    /// SMTP when `SMTP_URL` is set, else files under `MAIL_DIR`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.smtp_url {
            Some(url) => Self::smtp(url.expose_secret(), settings.email_concurrency),
            None => Ok(Self::file(&settings.mail_dir)),
        }
    }

    /// `smtp://[user:password@]host[:port][?tls=required|opportunistic|none]` (STARTTLS
    /// required unless told otherwise) or `smtps://…` (TLS from the first byte).
    /// Keeps up to `connections` connections open. Call it inside the Tokio runtime: the
    /// connection pool lives there.
    pub fn smtp(raw: &str, connections: usize) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(raw).map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .context("SMTP_URL names no host")?
            .to_string();
        let requested = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_ascii_lowercase());
        let mode = match (url.scheme(), requested.as_deref()) {
            ("smtps", None | Some("implicit")) => TlsMode::Implicit,
            ("smtp", None | Some("required") | Some("starttls")) => TlsMode::StartTls,
            ("smtp", Some("opportunistic")) => TlsMode::Opportunistic,
            ("smtp", Some("none")) => TlsMode::None,
            ("smtp" | "smtps", Some(other)) => {
                anyhow::bail!("SMTP_URL: tls={other} is not one of required, opportunistic, none")
            }
            (scheme, _) => anyhow::bail!("SMTP_URL: expected smtp:// or smtps://, got {scheme}://"),
        };
        // Say it the way lettre reads it: there a bare smtp:// means no TLS.
        let others: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "tls")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        let lettre_tls = match mode {
            TlsMode::StartTls => Some("required"),
            TlsMode::Opportunistic => Some("opportunistic"),
            TlsMode::Implicit | TlsMode::None => None,
        };
        if !others.is_empty() || lettre_tls.is_some() {
            let mut query = url.query_pairs_mut();
            for (k, v) in &others {
                query.append_pair(k, v);
            }
            if let Some(tls) = lettre_tls {
                query.append_pair("tls", tls);
            }
        }
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
            .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(connections.max(1) as u32));
        let port = url.port().unwrap_or(match mode {
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
            TlsMode::StartTls | TlsMode::Opportunistic => 587,
        });
        let user = if url.username().is_empty() {
            String::new()
        } else {
            " with credentials".to_string()
        };
        Ok(Self::Smtp {
            transport: builder.build(),
            description: format!("SMTP {host}:{port} ({}{user})", mode.label()),
        })
    }

    pub fn file(dir: &Path) -> Self {
        Self::File {
            transport: AsyncFileTransport::new(dir),
            dir: dir.to_path_buf(),
        }
    }

    /// For logs: no credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { description, .. } => description.clone(),
            Self::File { dir, .. } => format!(".eml files in {}", dir.display()),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp { transport, .. } => {
                let sent = transport.send(message).await;
                // lettre hands the connection back to its pool in a task of its own: let it
                // run, so that the next send reuses the connection rather than open another.
                tokio::task::yield_now().await;
                sent.map(drop).map_err(|e| SendError {
                    message: e.to_string(),
                    permanent: e.is_permanent(),
                })
            }
            Self::File { transport, dir } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SendError {
                        message: format!("cannot create {}: {e}", dir.display()),
                        permanent: false,
                    })?;
                let id = transport.send(message).await.map_err(|e| SendError {
                    message: e.to_string(),
                    permanent: false,
                })?;
                let path = dir.join(format!("{id}.eml"));
                tracing::info!(path = %path.display(), "email written");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The SMTP pool needs a runtime to be built and dropped in.
    #[tokio::test]
    async fn reads_the_smtp_url_forms() {
        let cases = [
            (
                "smtp://mail.example.com",
                "SMTP mail.example.com:587 (STARTTLS)",
            ),
            (
                "smtp://u%40x:p%2Fw@mail.example.com:2525",
                "SMTP mail.example.com:2525 (STARTTLS with credentials)",
            ),
            (
                "smtp://mail.example.com?tls=opportunistic",
                "SMTP mail.example.com:587 (STARTTLS when offered)",
            ),
            (
                "smtp://127.0.0.1:2525?tls=none",
                "SMTP 127.0.0.1:2525 (no TLS)",
            ),
            (
                "smtps://mail.example.com",
                "SMTP mail.example.com:465 (implicit TLS)",
            ),
        ];
        for (url, expected) in cases {
            let transport = Transport::smtp(url, 4).expect(url);
            assert_eq!(transport.describe(), expected);
            assert!(!format!("{transport:?}").contains("p%2Fw"));
        }
        for bad in [
            "http://mail.example.com",
            "smtp://mail.example.com?tls=maybe",
            "not a url",
        ] {
            assert!(Transport::smtp(bad, 4).is_err(), "{bad}");
        }
    }
}
