//! Which values of a configuration are secrets: the token, secret-looking
//! headers and query parameters, passwords in the server and proxy URLs.
//! They are collected once, when the settings are validated, so every log
//! line and error can be scrubbed of them.

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

use crate::secrets::{Secrets, is_secret_name};

pub(super) fn collect_secrets(
    url: &Url,
    token: Option<&str>,
    headers: &[(HeaderName, HeaderValue)],
    proxy: Option<&str>,
) -> Secrets {
    let mut secrets = Secrets::default();
    if let Some(token) = token {
        secrets.add(token);
    }
    for (name, value) in headers {
        if is_secret_name(name.as_str())
            && let Ok(v) = value.to_str()
        {
            secrets.add(v);
            // `Bearer xyz`: the credential alone may be echoed too.
            if let Some((_, credential)) = v.split_once(' ') {
                secrets.add(credential);
            }
        }
    }
    secrets.add_query_keys(url);
    let proxy = proxy.and_then(|p| Url::parse(p).ok());
    for url in std::iter::once(url).chain(proxy.as_ref()) {
        if let Some(password) = url.password() {
            secrets.add(password);
        }
    }
    secrets
}
