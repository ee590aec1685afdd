//! Image uploads and on-demand variants: EXIF applied, formats negotiated, jobs admitted by the
//! memory budget. The bombs are in the reliability suite (`reliability/images.rs`).

use std::io::Cursor;

use bytes::Bytes;
use serde_json::Value;

use crate::common::{TestApp, spawn_app, spawn_app_with};

/// A file of the repository's `media/`.
pub(crate) fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Uploads `bytes` as an image over HTTP/2: the status and the JSON answer.
pub(crate) async fn upload(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("x.jpg"));
    let response = app
        .h2()
        .post(app.tls_url("/api/images"))
        .header("authorization", app.uploader().await)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn fetch(app: &TestApp, path: &str, accept: &str) -> reqwest::Response {
    app.h2().get(app.tls_url(path)).header("accept", accept).send().await.unwrap()
}

fn dimensions(bytes: &[u8]) -> (u32, u32, image::ImageFormat) {
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().unwrap();
    let format = reader.format().unwrap();
    let (w, h) = reader.into_dimensions().unwrap();
    (w, h, format)
}

#[tokio::test]
async fn a_photo_gets_stored_variants_and_resizes_on_demand() {
    let app = spawn_app().await;
    let (status, image) = upload(&app, sample("sample-photo.jpg")).await;
    assert_eq!(status, 201, "{image}");
    assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(1280), Some(720)));
    let variants = image["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 4, "320 and 640 wide, WebP and JPEG: {image}");
    let id = image["id"].as_str().unwrap();

    let webp = fetch(&app, &format!("/images/{id}?w=320&fmt=webp"), "*/*").await;
    assert_eq!(webp.headers()["content-type"], "image/webp");
    assert_eq!(webp.headers()["cache-control"], "public, max-age=31536000, immutable");
    let etag = webp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(dimensions(&webp.bytes().await.unwrap()), (320, 180, image::ImageFormat::WebP));

    let cover = fetch(&app, &format!("/images/{id}?w=200&h=200&fit=cover&fmt=png"), "*/*").await;
    let cover = cover.bytes().await.unwrap();
    assert_eq!(dimensions(&cover), (200, 200, image::ImageFormat::Png));
    // Made on demand once, kept on disk as well as in memory.
    let cache = app.data_dir().join("images").join(id).join("cache");
    for _ in 0..50 {
        if std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let on_disk = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read(on_disk).unwrap(), cover);

    let again = app
        .h2()
        .get(app.tls_url(&format!("/images/{id}?w=320&fmt=webp")))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn the_format_is_negotiated_from_accept() {
    let app = spawn_app().await;
    let (_, image) = upload(&app, sample("sample-graphic.png")).await;
    let id = image["id"].as_str().unwrap();
    let chrome =
        fetch(&app, &format!("/images/{id}?w=100"), "image/avif,image/webp,image/apng,*/*;q=0.8").await;
    assert_eq!(chrome.headers()["content-type"], "image/webp");
    assert_eq!(chrome.headers()["vary"], "accept");
    let old = fetch(&app, &format!("/images/{id}?w=100"), "image/jpeg,*/*;q=0.5").await;
    assert_eq!(old.headers()["content-type"], "image/jpeg");
    assert_eq!(dimensions(&old.bytes().await.unwrap()).0, 100);
}

#[tokio::test]
async fn exif_orientation_is_applied() {
    let app = spawn_app().await;
    let (status, image) = upload(&app, rotated_jpeg()).await;
    assert_eq!(status, 201, "{image}");
    assert_eq!((image["width"].as_u64(), image["height"].as_u64()), (Some(20), Some(40)), "turned upright");
    let stored = fetch(&app, &format!("/images/{}?fmt=jpeg", image["id"].as_str().unwrap()), "*/*").await;
    let bytes = stored.bytes().await.unwrap();
    assert_eq!(dimensions(&bytes).0, 20);
    assert!(!bytes.windows(4).any(|w| w == b"Exif"), "metadata is stripped");
}

#[tokio::test]
async fn bad_queries_and_unknown_ids_are_refused() {
    let app = spawn_app().await;
    let (_, image) = upload(&app, sample("sample-graphic.png")).await;
    let id = image["id"].as_str().unwrap();
    for query in ["w=5000", "w=0", "fmt=bmp", "fit=stretch", "q=0", "q=101", "zoom=2"] {
        let response = fetch(&app, &format!("/images/{id}?{query}"), "application/json").await;
        assert_eq!(response.status(), 400, "{query}");
    }
    assert_eq!(fetch(&app, "/images/nope", "*/*").await.status(), 404);
}

/// A 40×20 JPEG whose EXIF says "rotate 90° clockwise to display".
fn rotated_jpeg() -> Vec<u8> {
    let mut jpeg = Vec::new();
    let img = image::RgbImage::from_fn(40, 20, |x, _| image::Rgb([(x * 6) as u8, 80, 160]));
    img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let tiff: [u8; 26] = [
        b'I', b'I', 0x2A, 0, 8, 0, 0, 0, // little-endian TIFF header, IFD at 8
        1, 0, // one entry
        0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, // Orientation (SHORT) = 6
        0, 0, 0, 0, // no next IFD
    ];
    let mut app1 = vec![0xFF, 0xE1, 0, (2 + 6 + tiff.len()) as u8];
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    let _ = Bytes::new();
    out
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.h2().get(app.tls_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
    line.unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A `width`×`height` RGB gradient PNG: a few KB however large, and quick to make.
pub(crate) fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

#[tokio::test]
async fn image_jobs_are_admitted_by_the_memory_budget() {
    // 1200×800 RGB is 2.9 MB decoded, about 5.3 MB estimated: one fits in 8 MiB, two do not.
    let app = spawn_app_with(|config| config.images.memory_budget = 8 << 20).await;
    assert_eq!(metric(&app, "kino_image_memory_budget_bytes").await, 8 << 20);

    // 2000×1500 (9 MB decoded, ~14.5 MB estimated) can never fit: refused at once, with reasons.
    let (status, body) = upload(&app, gradient_png(2000, 1500)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("8 MiB image memory budget"), "{body}");

    // Three at once all succeed, but at least one had to wait for another's share.
    let small = gradient_png(1200, 800);
    let results = futures_util::future::join_all((0..3).map(|_| upload(&app, small.clone()))).await;
    for (status, body) in results {
        assert_eq!(status, 201, "{body}");
    }
    let waits = metric(&app, "kino_image_admission_waits_total").await;
    assert!(waits >= 1, "no job waited: {waits}");
    assert_eq!(metric(&app, "kino_image_memory_reserved_bytes").await, 0, "every share is given back");
}
