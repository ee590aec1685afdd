//! Where a message goes: an SMTP relay (lettre), or `.eml` files under the data dir.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, MailTransport};
use crate::crypto::SecretBox;

/// The folder under the data dir the file transport writes to.
const MAIL_DIR: &str = "mail";

/// A configured transport.
pub(crate) enum Transport {
    /// Writes `<data_dir>/mail/<id>.eml`.
    File(PathBuf),
    /// Delivers to the relay, one connection per message, within `send_timeout` in all.
    Smtp { relay: AsyncSmtpTransport<Tokio1Executor>, send_timeout: Duration },
}

impl Transport {
    /// The transport `config.mail` describes; an encrypted `smtp_password` (`v1.…`) is
    /// decrypted with the server secret here, once.
    pub(crate) fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mail = &config.mail;
        if mail.transport == MailTransport::File {
            return Ok(Self::File(config.data_dir.join(MAIL_DIR)));
        }
        let host = mail.smtp_host.as_deref().context("mail.smtp_host is not set")?;
        let builder = if mail.smtp_starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .with_context(|| format!("mail.smtp_host {host:?}: TLS parameters"))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        };
        // lettre's timeout bounds connecting and each reply; the whole delivery is bounded
        // by `send_timeout` around it.
        let mut builder = builder.port(mail.smtp_port).timeout(Some(mail.connect_timeout));
        match (&mail.smtp_username, &mail.smtp_password) {
            (Some(user), Some(password)) => {
                let password = plain_password(config, password)?;
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, None) => {}
            _ => bail!("mail.smtp_username and mail.smtp_password go together"),
        }
        Ok(Self::Smtp { relay: builder.build(), send_timeout: mail.send_timeout })
    }

    /// Sends `message`, whose outbox id is `id`.
    pub(crate) async fn send(&self, id: &str, message: Message) -> anyhow::Result<()> {
        match self {
            Self::File(dir) => {
                let path = dir.join(format!("{id}.eml"));
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || crate::fs::write_private(&path, &bytes))
                    .await
                    .context("the mail writer panicked")?
                    .context("writing the .eml file")
            }
            Self::Smtp { relay, send_timeout } => {
                match tokio::time::timeout(*send_timeout, relay.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(anyhow::Error::new(error).context("SMTP delivery failed")),
                    Err(_) => bail!("SMTP delivery took longer than mail.send_timeout ({send_timeout:?})"),
                }
            }
        }
    }
}

/// The SMTP password in the clear: as configured, or decrypted when it is `v1.…`.
fn plain_password(config: &Config, password: &SecretString) -> anyhow::Result<String> {
    let value = password.expose_secret();
    if !SecretBox::is_encrypted(value) {
        return Ok(value.to_owned());
    }
    let secret = config.secret.as_ref().context("the server secret is not set")?;
    SecretBox::new(secret).decrypt(value).map_err(|error| anyhow::anyhow!("mail.smtp_password: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_password_is_decrypted_and_one_of_another_secret_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(dir.path());
        let ours = SecretBox::new(config.secret.as_ref().unwrap()).encrypt("relay-pass");
        assert_eq!(plain_password(&config, &SecretString::from(ours)).unwrap(), "relay-pass");
        assert_eq!(plain_password(&config, &SecretString::from("plain-pass")).unwrap(), "plain-pass");
        let theirs = SecretBox::new(&SecretString::from("another-secret-another-secret-xx")).encrypt("x");
        let error = plain_password(&config, &SecretString::from(theirs)).unwrap_err().to_string();
        assert!(error.contains("mail.smtp_password") && error.contains("does not decrypt"), "{error}");
    }
}
