//! HSTS over real TLS and QUIC: sent with a configured certificate and `tls.hsts`, never with
//! the generated development certificate, never over plain HTTP.

use http::Method;
use kino::cert::Certificates;

use crate::common::{ALL_PROTOCOLS, spawn_app, spawn_app_with};

const HSTS: &str = "strict-transport-security";

#[tokio::test]
async fn hsts_goes_out_over_tls_and_quic_with_a_configured_certificate_only() {
    kino::tls::install_crypto_provider();
    // A certificate the client trusts through its CA, configured as an operator would a real one.
    let issued = tempfile::tempdir().unwrap();
    let mut tls = kino::Config::for_tests(issued.path()).tls;
    tls.cert_dir = issued.path().to_owned();
    Certificates::resolve(&tls).unwrap();
    let app = spawn_app_with(|config| {
        config.tls.cert_dir = issued.path().to_owned();
        config.tls.cert_path = Some(issued.path().join("cert.pem"));
        config.tls.key_path = Some(issued.path().join("key.pem"));
        config.tls.hsts = true;
    })
    .await;
    for protocol in ALL_PROTOCOLS {
        let answer = app.fetch(protocol, Method::GET, "/", &[]).await;
        assert_eq!(answer.header(HSTS), Some("max-age=63072000"), "{protocol:?}");
    }
    let plain = app.plain().get(app.plain_url("/")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get(HSTS).is_none(), "HSTS over plain HTTP");

    // The default: the generated certificate, no HSTS on any protocol.
    let generated = spawn_app().await;
    for protocol in ALL_PROTOCOLS {
        let answer = generated.fetch(protocol, Method::GET, "/", &[]).await;
        assert_eq!(answer.status, 200, "{protocol:?}");
        assert_eq!(answer.header(HSTS), None, "{protocol:?}");
    }
}
