//! Ingest speed: a 12 MP JPEG to a 320 px WebP thumbnail (side by side with libvips'
//! `vipsthumbnail` when it is installed), and streaming upload throughput over loopback.
#![allow(missing_docs)]

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A 4000×3000 photo-like JPEG (smooth gradients and detail, quality 90).
fn twelve_megapixels() -> Vec<u8> {
    let image = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let r = (x * 255 / 4000) as u8;
        let g = (y * 255 / 3000) as u8;
        let b = (((x / 7) ^ (y / 5)) & 0xFF) as u8;
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image).unwrap();
    out
}

fn thumbnails(c: &mut Criterion) {
    let jpeg = twelve_megapixels();
    let mut group = c.benchmark_group("12 MP JPEG to 320 px WebP");
    group.sample_size(20);
    group.bench_function("kino (decode, fast_image_resize, libwebp)", |b| {
        b.iter(|| kino::bench::thumbnail_webp(&jpeg, 320));
    });
    group.finish();

    // libvips in one process over many copies, so its start-up is amortised away.
    let Ok(status) = Command::new("vipsthumbnail").arg("--version").output() else {
        eprintln!("vipsthumbnail not installed (apt-get install libvips-tools): no side-by-side figure");
        return;
    };
    assert!(status.status.success());
    let dir = tempfile::tempdir().unwrap();
    let copies = 20;
    let inputs: Vec<_> = (0..copies)
        .map(|i| {
            let path = dir.path().join(format!("photo{i}.jpg"));
            std::fs::write(&path, &jpeg).unwrap();
            path
        })
        .collect();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let ok = Command::new("vipsthumbnail")
            .args(&inputs)
            .args(["-s", "320", "-o", "%s.webp[Q=80]"])
            .status()
            .unwrap();
        assert!(ok.success());
        runs.push(started.elapsed() / copies);
    }
    runs.sort();
    let kino_time = {
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let started = Instant::now();
                kino::bench::thumbnail_webp(&jpeg, 320);
                started.elapsed()
            })
            .collect();
        times.sort();
        times[2]
    };
    println!(
        "side by side, median of 5: kino {kino_time:?}, vipsthumbnail {:?} per thumbnail; vips/kino = {:.2}",
        runs[2],
        runs[2].as_secs_f64() / kino_time.as_secs_f64()
    );
}

fn uploads(c: &mut Criterion) {
    const SIZE: usize = 64 * 1024 * 1024;
    kino::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (http, https, ca) = runtime.block_on(async {
        let mut config = kino::Config::for_tests(dir.path());
        config.media_dirs = vec![dir.path().join("media")];
        let server = kino::Application::build(config).await.unwrap();
        let ca = std::fs::read(server.certificates().ca_path.clone().unwrap()).unwrap();
        let addresses = (server.http_addr(), server.https_addr());
        tokio::spawn(server.run(std::future::pending()));
        (addresses.0, addresses.1, ca)
    });
    // Uploads need an uploader; the first account of a fresh server is an admin.
    let auth = runtime.block_on(kino_test_support::first_account_token(http));
    // A valid MP4 head (so the upload is accepted) followed by a large `free` box.
    let head = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/media/sample-h264.mp4")).unwrap();
    let tls = |builder: reqwest::ClientBuilder| {
        builder.tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]).resolve("localhost", https)
    };
    let clients = [
        (
            "HTTP/1.1 plain",
            reqwest::Client::builder().http1_only().build().unwrap(),
            format!("http://{http}/api/videos"),
        ),
        (
            "HTTP/1.1 TLS",
            tls(reqwest::Client::builder().http1_only()).build().unwrap(),
            format!("https://localhost:{}/api/videos", https.port()),
        ),
        (
            "HTTP/2 TLS",
            tls(reqwest::Client::builder().http2_prior_knowledge()).build().unwrap(),
            format!("https://localhost:{}/api/videos", https.port()),
        ),
    ];
    let mut group = c.benchmark_group("upload 64 MiB (multipart, streamed to disk)");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    let mut seed = 0u32;
    for (name, client, url) in clients {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                seed += 1;
                // Distinct bytes every time, or the library would deduplicate the upload.
                let mut file = head.clone();
                let padding = SIZE - head.len();
                file.extend_from_slice(&(padding as u32).to_be_bytes());
                file.extend_from_slice(b"free");
                file.extend_from_slice(&seed.to_be_bytes());
                file.resize(SIZE, 0x5A);
                let boundary = "bench-boundary";
                let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.mp4\"\r\n\r\n").into_bytes();
                body.extend_from_slice(&file);
                body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                let body = Bytes::from(body);
                let request = client
                    .post(&url)
                    .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                    .header("authorization", &auth)
                    .body(body);
                async move {
                    let response = request.send().await.unwrap();
                    assert_eq!(response.status(), 201);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, thumbnails, uploads);
criterion_main!(benches);
