//! Image uploads and on-demand variants: bombs refused fast, EXIF applied, formats negotiated.

use std::io::Cursor;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kino_test_support::zlib_zeros;
use serde_json::Value;

use crate::common::{TestApp, rss_bytes, spawn_app, spawn_app_with};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/media/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn upload(app: &TestApp, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name("x.jpg"));
    let response = app.h2().post(app.tls_url("/api/images")).multipart(form).send().await.unwrap();
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

#[tokio::test]
async fn image_bombs_are_refused_fast_with_bounded_memory() {
    let app = spawn_app().await;
    let before = rss_bytes();
    let mut truncated = sample("sample-photo.jpg");
    truncated.truncate(truncated.len() / 2);
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("100k×100k PNG header", png_header(100_000, 100_000), 413),
        ("20k×20k all-zero PNG", png_header(20_000, 20_000), 413),
        ("truncated JPEG", truncated, 422),
        ("text", b"definitely not an image".to_vec(), 415),
    ];
    for (name, bytes, expected) in cases {
        let started = Instant::now();
        let (status, body) = upload(&app, bytes).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert!(started.elapsed() < Duration::from_secs(2), "{name} took {:?}", started.elapsed());
    }
    // Thousands of frames: only the first is ever decoded.
    let started = Instant::now();
    let (status, body) = upload(&app, many_frame_gif(3000)).await;
    assert_eq!(status, 201, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "GIF took {:?}", started.elapsed());
    let growth = rss_bytes().saturating_sub(before);
    assert!(growth < 64 * 1024 * 1024, "RSS grew {} MB", growth >> 20);
}

/// A PNG signature and an IHDR chunk declaring `w`×`h` 8-bit grey, then an empty IDAT and IEND.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    for (kind, data) in [
        (&b"IHDR"[..], ihdr),
        (b"IDAT", vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        (b"IEND", vec![]),
    ] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn many_frame_gif(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        let frame = image::RgbaImage::from_pixel(4, 4, image::Rgba([200, 30, 30, 255]));
        for _ in 0..frames {
            encoder.encode_frame(image::Frame::new(frame.clone())).unwrap();
        }
    }
    out
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

/// A 1×1 greyscale PNG carrying `chunks` between its IHDR and its pixels, CRCs and all.
fn png_with_chunks(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut put = |kind: &[u8; 4], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    };
    put(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
    for (kind, data) in chunks {
        put(kind, data);
    }
    put(b"IDAT", &zlib_zeros(2)); // the row's filter byte and its one pixel
    put(b"IEND", &[]);
    png
}

/// An `iCCP` chunk whose profile inflates to `len` bytes.
fn iccp_bomb(len: u64) -> (&'static [u8; 4], Vec<u8>) {
    let mut data = b"bomb\0\0".to_vec(); // keyword, NUL, compression method 0
    data.extend_from_slice(&zlib_zeros(len));
    (b"iCCP", data)
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

#[tokio::test]
async fn icc_profile_bomb_is_refused_with_413_and_bounded_memory() {
    let app = spawn_app().await;
    let bomb = png_with_chunks(&[iccp_bomb(1 << 30)]);
    assert!(bomb.len() < 1_100_000, "{} bytes", bomb.len());
    let before = rss_bytes();
    let started = Instant::now();
    let (status, body) = upload(&app, bomb).await;
    let (elapsed, growth) = (started.elapsed(), rss_bytes().saturating_sub(before));
    eprintln!("1 GiB ICC bomb: {status} in {elapsed:?}, RSS +{} MB", growth >> 20);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ICC profile"), "{body}");
    assert!(growth < 64 << 20, "RSS grew {} MB", growth >> 20);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // A real-sized profile (sRGB's is 3 KiB) is accepted, and dropped with the other metadata.
    let (status, body) = upload(&app, png_with_chunks(&[iccp_bomb(3144)])).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn four_icc_bombs_at_once_stay_under_128_mb_and_healthz_stays_fast() {
    let app = spawn_app().await;
    let bomb = png_with_chunks(&[iccp_bomb(1 << 30)]);
    let before = rss_bytes();
    let bombs = futures_util::future::join_all((0..4).map(|_| upload(&app, bomb.clone())));
    let health = async {
        // /healthz, timed while the bombs are being read and refused.
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let started = Instant::now();
            let response = app.h2().get(app.tls_url("/healthz")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest
    };
    let (results, slowest) = tokio::join!(bombs, health);
    let growth = rss_bytes().saturating_sub(before);
    eprintln!("four ICC bombs: RSS +{} MB, slowest /healthz {slowest:?}", growth >> 20);
    for (status, body) in results {
        assert_eq!(status, 413, "{body}");
    }
    assert!(growth < 128 << 20, "RSS grew {} MB", growth >> 20);
    assert!(slowest < Duration::from_secs(2), "/healthz took {slowest:?}");
}

#[tokio::test]
async fn text_bombs_are_never_inflated_and_oversized_metadata_is_refused() {
    let app = spawn_app().await;
    // zTXt: keyword, NUL, method 0, zlib text. iTXt: keyword, NUL, compressed flag 1, method 0,
    // empty language tag and translated keyword (two NULs), zlib text.
    let mut ztxt = b"Comment\0\0".to_vec();
    ztxt.extend_from_slice(&zlib_zeros(1 << 30));
    let mut itxt = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
    itxt.extend_from_slice(&zlib_zeros(1 << 30));
    for (name, chunk) in [("zTXt", (b"zTXt", ztxt)), ("iTXt", (b"iTXt", itxt))] {
        let before = rss_bytes();
        let (status, body) = upload(&app, png_with_chunks(&[chunk])).await;
        let growth = rss_bytes().saturating_sub(before);
        eprintln!("1 GiB {name} bomb: {status}, RSS +{} MB", growth >> 20);
        // The text is dropped unread, so the image itself is fine.
        assert_eq!(status, 201, "{name}: {body}");
        assert!(growth < 64 << 20, "{name}: RSS grew {} MB", growth >> 20);
    }
    // 8 MiB of EXIF is over the 4 MiB metadata limit: refused before a decoder copies it.
    let exif = (b"eXIf", vec![0u8; 8 << 20]);
    let (status, body) = upload(&app, png_with_chunks(&[exif])).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("metadata"), "{body}");
}

/// A `width`×`height` RGB gradient PNG: a few KB however large, and quick to make.
fn gradient_png(width: u32, height: u32) -> Vec<u8> {
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
