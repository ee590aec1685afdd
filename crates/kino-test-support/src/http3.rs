//! A small HTTP/3 client on h3 + h3-quinn, trusting only the test server's CA.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// One QUIC connection speaking HTTP/3.
pub struct H3Client {
    send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    connection: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl H3Client {
    /// Connects to `addr` as `localhost`.
    pub async fn connect(addr: SocketAddr, ca_pem: &[u8]) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert?)?;
        }
        let mut tls = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        let local = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" };
        let mut endpoint = quinn::Endpoint::client(local.parse().expect("a socket address"))?;
        endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
        let connection = endpoint.connect(addr, "localhost")?.await.context("QUIC handshake")?;
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection.clone())).await?;
        tokio::spawn(async move {
            let _ = poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok(Self { send, connection, _endpoint: endpoint })
    }

    /// Sends `request` with `body` and reads the whole response.
    pub async fn request(&mut self, request: Request<Bytes>) -> anyhow::Result<Response<Bytes>> {
        let mut stream = self.start(request).await?;
        let head = stream.recv_response().await?;
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await? {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Ok(head.map(|()| body.freeze()))
    }

    /// Sends `request` and returns the stream, for tests that read the response bit by bit.
    pub async fn start(
        &mut self,
        request: Request<Bytes>,
    ) -> anyhow::Result<h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>> {
        let (head, body) = request.into_parts();
        let mut stream = self.send.send_request(Request::from_parts(head, ())).await?;
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await?;
        Ok(stream)
    }

    /// Sends `head` with a body streamed from `chunks`, then reads the whole response.
    pub async fn request_streaming(
        &mut self,
        head: Request<()>,
        mut chunks: impl futures_util::Stream<Item = Bytes> + Unpin,
    ) -> anyhow::Result<Response<Bytes>> {
        use futures_util::StreamExt;
        let mut stream = self.send.send_request(head).await?;
        let mut sent_all = true;
        while let Some(chunk) = chunks.next().await {
            // A server may answer early (413) and stop reading: then read its answer.
            if stream.send_data(chunk).await.is_err() {
                sent_all = false;
                break;
            }
        }
        if sent_all {
            let _ = stream.finish().await;
        }
        let head = stream.recv_response().await?;
        let mut body = BytesMut::new();
        while let Some(mut chunk) = stream.recv_data().await? {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Ok(head.map(|()| body.freeze()))
    }

    /// A GET of `url` with `headers`.
    pub async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<Response<Bytes>> {
        let mut builder = Request::get(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.request(builder.body(Bytes::new())?).await
    }

    /// The QUIC connection under the HTTP/3 one, for tests that write raw frames.
    pub fn quic(&self) -> &quinn::Connection {
        &self.connection
    }

    /// Whether the server has closed the QUIC connection.
    pub fn close_reason(&self) -> Option<quinn::ConnectionError> {
        self.connection.close_reason()
    }
}
