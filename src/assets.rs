//! Static assets: compiled into the binary, with their precompressed siblings and a content hash
//! for versioned URLs (served by `routes::assets`).

use std::sync::LazyLock;

/// One asset and its encodings.
pub(crate) struct Asset {
    /// The file name under `/static/`.
    pub(crate) name: &'static str,
    /// Its `Content-Type`.
    pub(crate) mime: &'static str,
    /// The bytes as written.
    pub(crate) raw: &'static [u8],
    /// `(content-coding, bytes)`, best first; made with `brotli -q 11` and `gzip -9 -n`.
    pub(crate) encoded: &'static [(&'static str, &'static [u8])],
    /// 64 bits of BLAKE3 of the raw bytes, hex.
    pub(crate) hash: String,
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {{
        let raw: &'static [u8] = include_bytes!(concat!("../static/", $name));
        Asset {
            name: $name,
            mime: $mime,
            raw,
            encoded: &[
                ("br", include_bytes!(concat!("../static/", $name, ".br"))),
                ("gzip", include_bytes!(concat!("../static/", $name, ".gz"))),
            ],
            hash: blake3::hash(raw).to_hex()[..16].to_owned(),
        }
    }};
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| vec![asset!("kino.css", "text/css; charset=utf-8")]);

/// The asset called `name`, if there is one.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The versioned URL of an asset, for templates.
pub(crate) fn url(name: &str) -> String {
    let asset = find(name).expect("a known asset name");
    format!("/static/{}?v={}", asset.name, asset.hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_versioned_url() {
        assert!(url("kino.css").starts_with("/static/kino.css?v="));
    }
}
