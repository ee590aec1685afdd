//! The cost of view counting: tracker observations per second, and streaming with tracking on
//! against tracking off over a loopback socket.
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use kino::bench::{CHUNK, FileBody, Segment, TrackerBench};
use tokio::io::AsyncWriteExt;

const LEN: u64 = 64 * 1024 * 1024;

fn tracker(c: &mut Criterion) {
    // A one-hour video at 2 MB/s, delivered in 256 KiB chunks: 27,466 observations per viewing.
    let bench = TrackerBench::new(3600, 2_000_000);
    let total: u64 = 3600 * 2_000_000;
    let chunks = total.div_ceil(CHUNK);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _inside = runtime.enter();
    let mut group = c.benchmark_group("view tracker");
    group.throughput(Throughput::Elements(chunks));
    let mut viewer = 0;
    group.bench_function("observations (one viewing of a 1 h video in 256 KiB chunks)", |b| {
        b.iter(|| {
            viewer += 1;
            let observer = bench.observer(viewer, total);
            for chunk in 0..chunks {
                observer.delivered(chunk * CHUNK, CHUNK.min(total - chunk * CHUNK));
            }
        });
    });
    group.finish();
}

fn streaming(c: &mut Criterion) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let block = vec![7u8; 1024 * 1024];
    for _ in 0..LEN / block.len() as u64 {
        file.write_all(&block).unwrap();
    }
    std::fs::read(file.path()).unwrap();
    let handle = Arc::new(File::open(file.path()).unwrap());
    let bench = TrackerBench::new(3600, LEN / 3600);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("stream 64 MiB over loopback TCP");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(30);
    for tracking in [false, true] {
        let name = if tracking { "view tracking on" } else { "view tracking off" };
        let mut viewer = 0;
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                viewer += 1;
                let mut body = FileBody::new(handle.clone(), vec![Segment::File { offset: 0, len: LEN }]);
                if tracking {
                    body = body.reporting_to(bench.observer(viewer, LEN));
                }
                async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let address = listener.local_addr().unwrap();
                    let drained = tokio::spawn(async move {
                        let (mut socket, _) = listener.accept().await.unwrap();
                        tokio::io::copy(&mut socket, &mut tokio::io::sink()).await.unwrap()
                    });
                    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
                    while let Some(frame) = body.frame().await {
                        socket.write_all(frame.unwrap().data_ref().unwrap()).await.unwrap();
                    }
                    drop(socket);
                    assert_eq!(drained.await.unwrap(), LEN);
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, tracker, streaming);
criterion_main!(benches);
