//! Image bombs against the binary: metadata that inflates to a GiB, declared giants, truncated
//! files, thousands of frames, and four bombs at once, each answered in bounded time and memory.

use std::time::{Duration, Instant};

use kino_test_support::zlib_zeros;

use super::{Kino, Options};
use crate::images::{gradient_png, sample, upload};

/// The bound for one upload: its decoded size (a few KB here) plus 64 MB.
const ONE_UPLOAD_MB: f64 = 64.0;

#[tokio::test]
async fn every_kind_of_image_bomb_is_answered_within_2_s_and_64_mb() {
    let kino = Kino::start(Options::default());
    let clients = kino.clients();
    // Signed up before the baseline: the password hash's 19 MiB is not the images' memory.
    clients.uploader().await;
    let mut jpeg = sample("sample-photo.jpg");
    jpeg.truncate(jpeg.len() / 2);
    let mut png = gradient_png(1200, 800);
    png.truncate(png.len() / 2);
    let mut ztxt = b"Comment\0\0".to_vec(); // keyword, NUL, method 0, zlib text
    ztxt.extend_from_slice(&zlib_zeros(1 << 30));
    // Keyword, NUL, compressed flag 1, method 0, empty language tag and translated keyword.
    let mut itxt = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
    itxt.extend_from_slice(&zlib_zeros(1 << 30));
    let cases: [(&str, Vec<u8>, u16, &str); 11] = [
        ("iCCP inflating to 1 GiB", png_with_chunks(&[iccp_bomb(1 << 30)]), 413, "ICC profile"),
        // Text is dropped unread, so the image itself is fine.
        ("zTXt inflating to 1 GiB", png_with_chunks(&[(b"zTXt", ztxt)]), 201, ""),
        ("iTXt inflating to 1 GiB", png_with_chunks(&[(b"iTXt", itxt)]), 201, ""),
        ("8 MiB eXIf", png_with_chunks(&[(b"eXIf", vec![0; 8 << 20])]), 413, "metadata"),
        ("100k×100k PNG header", png_header(100_000, 100_000), 413, ""),
        ("20k×20k PNG header", png_header(20_000, 20_000), 413, ""),
        ("truncated JPEG", jpeg, 422, ""),
        ("truncated PNG", png, 422, ""),
        ("text", b"definitely not an image".to_vec(), 415, ""),
        // Only the first frame is ever decoded.
        ("3,000-frame GIF", many_frame_gif(3000), 201, ""),
        // sRGB's profile is 3 KiB: a real-sized one is taken (and dropped with the metadata).
        ("3 KiB iCCP", png_with_chunks(&[iccp_bomb(3144)]), 201, ""),
    ];
    for (name, bytes, expected, says) in cases {
        let base = kino.baseline();
        let started = Instant::now();
        let (status, body) = upload(&clients, bytes).await;
        let (took, growth) = (started.elapsed(), kino.peak_growth_mb(base));
        eprintln!("{name}: {status} in {took:?}, +{growth:.1} MB");
        assert_eq!(status, expected, "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains(says), "{name}: {body}");
        assert!(took < Duration::from_secs(2), "{name} took {took:?}");
        assert!(growth < ONE_UPLOAD_MB, "{name} grew the server by {growth:.1} MB");
    }
}

#[tokio::test]
async fn four_icc_bombs_at_once_cost_under_128_mb_while_healthz_answers() {
    let kino = Kino::start(Options::default());
    let clients = kino.clients();
    // Signed up before the baseline: the password hash's 19 MiB is not the images' memory.
    clients.uploader().await;
    let bomb = png_with_chunks(&[iccp_bomb(1 << 30)]);
    let base = kino.baseline();
    let started = Instant::now();
    let bombs = futures_util::future::join_all((0..4).map(|_| upload(&clients, bomb.clone())));
    let health = async {
        // Timed while the bombs are read and refused, each on its own connection.
        let mut slowest = Duration::ZERO;
        for _ in 0..10 {
            let (status, took) = kino.get("/healthz").await;
            assert_eq!(status, 200);
            slowest = slowest.max(took);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest
    };
    let (results, slowest) = tokio::join!(bombs, health);
    let (took, growth) = (started.elapsed(), kino.peak_growth_mb(base));
    eprintln!("four ICC bombs at once: {took:?}, +{growth:.1} MB, slowest /healthz {slowest:?}");
    for (status, body) in results {
        assert_eq!(status, 413, "{body}");
    }
    assert!(growth < 128.0, "four bombs grew the server by {growth:.1} MB");
    assert!(took < Duration::from_secs(5), "four bombs took {took:?}");
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?} during the bombs");
}

/// A PNG signature and an IHDR chunk declaring `w`×`h` 8-bit grey, then an empty IDAT and IEND.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    png(&[
        (b"IHDR", ihdr),
        (b"IDAT", vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        (b"IEND", vec![]),
    ])
}

/// A 1×1 greyscale PNG carrying `chunks` between its IHDR and its pixels.
fn png_with_chunks(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut all = vec![(b"IHDR", vec![0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0])];
    all.extend(chunks.iter().cloned());
    all.push((b"IDAT", zlib_zeros(2))); // the row's filter byte and its one pixel
    all.push((b"IEND", vec![]));
    png(&all)
}

/// A PNG signature and `chunks`, CRCs and all.
fn png(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend_from_slice(data);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

/// An `iCCP` chunk whose profile inflates to `len` bytes.
fn iccp_bomb(len: u64) -> (&'static [u8; 4], Vec<u8>) {
    let mut data = b"bomb\0\0".to_vec(); // keyword, NUL, compression method 0
    data.extend_from_slice(&zlib_zeros(len));
    (b"iCCP", data)
}

/// The CRC-32 of a PNG chunk (ISO 3309, as PNG's annex D computes it).
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

/// A GIF of `frames` 4×4 frames.
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
