//! How the range engine should read file bytes: positioned reads (`FileBody`) against zero-copy
//! slices of a memory-mapped file, and, for one 64 KiB range, reading a cached chunk on the
//! connection's task (`FileBody`'s `RWF_NOWAIT` path) against a trip to the blocking pool.
//!
//! The bulk cases produce the chunks of a 64 MiB file that is in the page cache, and hand each
//! chunk to a sink that copies it once, as the kernel does when the chunk is written to a socket.
#![allow(missing_docs)]
// Mapping a file is `unsafe` (another process may truncate it); this bench measures the approach
// the server rejects, so the unsafety stays here.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use kino::bench::{CHUNK, FileBody, Segment};
use tokio::io::AsyncWriteExt;

const LEN: u64 = 64 * 1024 * 1024;

fn sample_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..LEN / block.len() as u64 {
        file.write_all(&block).unwrap();
    }
    file.flush().unwrap();
    // Read it once so both strategies start from the page cache.
    std::fs::read(file.path()).unwrap();
    file
}

/// Stands for the socket: one copy of every byte.
fn consume(sink: &mut Vec<u8>, chunk: &[u8]) {
    sink.clear();
    sink.extend_from_slice(chunk);
    std::hint::black_box(&sink);
}

fn reads(c: &mut Criterion) {
    let file = sample_file();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("read 64 MiB");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);

    group.bench_function("pread 256 KiB (FileBody)", |b| {
        let handle = Arc::new(File::open(file.path()).unwrap());
        b.to_async(&runtime).iter(|| {
            let handle = handle.clone();
            async move {
                let mut body = FileBody::new(handle, vec![Segment::File { offset: 0, len: LEN }]);
                let mut sink = Vec::with_capacity(CHUNK as usize);
                while let Some(frame) = body.frame().await {
                    consume(&mut sink, frame.unwrap().data_ref().unwrap());
                }
            }
        });
    });

    group.bench_function("mmap, zero-copy 256 KiB Bytes slices", |b| {
        let handle = File::open(file.path()).unwrap();
        b.iter(|| {
            // SAFETY: the temp file is private to this bench and never truncated while mapped.
            let map = unsafe { memmap2::Mmap::map(&handle) }.unwrap();
            let bytes = Bytes::from_owner(map);
            let mut sink = Vec::with_capacity(CHUNK as usize);
            let mut offset = 0;
            while offset < LEN as usize {
                let end = (offset + CHUNK as usize).min(LEN as usize);
                consume(&mut sink, &bytes.slice(offset..end));
                offset = end;
            }
        });
    });
    group.finish();

    // The same two, but every chunk goes through a loopback TCP socket to a reader that drains
    // it: the path a response really takes, where the socket copy is the cost that remains.
    let mut group = c.benchmark_group("send 64 MiB over loopback TCP");
    group.throughput(Throughput::Bytes(LEN));
    group.sample_size(20);
    group.bench_function("pread 256 KiB (FileBody)", |b| {
        let handle = Arc::new(File::open(file.path()).unwrap());
        b.to_async(&runtime).iter(|| {
            let handle = handle.clone();
            async move {
                let (mut socket, drained) = loopback().await;
                let mut body = FileBody::new(handle, vec![Segment::File { offset: 0, len: LEN }]);
                while let Some(frame) = body.frame().await {
                    socket.write_all(frame.unwrap().data_ref().unwrap()).await.unwrap();
                }
                drop(socket);
                assert_eq!(drained.await.unwrap(), LEN);
            }
        });
    });
    group.bench_function("mmap, zero-copy 256 KiB Bytes slices", |b| {
        let handle = File::open(file.path()).unwrap();
        b.to_async(&runtime).iter(|| {
            // SAFETY: as above.
            let map = unsafe { memmap2::Mmap::map(&handle) }.unwrap();
            async move {
                let bytes = Bytes::from_owner(map);
                let (mut socket, drained) = loopback().await;
                let mut offset = 0;
                while offset < LEN as usize {
                    let end = (offset + CHUNK as usize).min(LEN as usize);
                    socket.write_all(&bytes.slice(offset..end)).await.unwrap();
                    offset = end;
                }
                drop(socket);
                assert_eq!(drained.await.unwrap(), LEN);
            }
        });
    });
    group.finish();

    // One 64 KiB range, the unit of a player's requests: the whole body of one response. One
    // async worker, as in the peers comparison, so the pool trip pays its real thread hand-off.
    let one_worker =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("one 64 KiB range");
    group.throughput(Throughput::Bytes(RANGE));
    let handle = Arc::new(File::open(file.path()).unwrap());
    for (name, pool) in
        [("read on the connection's task (RWF_NOWAIT)", false), ("read on the blocking pool", true)]
    {
        group.bench_function(name, |b| {
            let mut offset = 0;
            b.to_async(&one_worker).iter(|| {
                // A different range each time, as random player requests are.
                offset = (offset + 7 * RANGE) % (LEN - RANGE);
                let body = FileBody::new(handle.clone(), vec![Segment::File { offset, len: RANGE }]);
                let body = if pool { body.on_blocking_pool() } else { body };
                async move { std::hint::black_box(body.collect().await.unwrap().to_bytes()) }
            });
        });
    }
    group.finish();
}

/// The range size of the per-request case.
const RANGE: u64 = 64 * 1024;

/// A connected loopback socket and a task that drains the other end, returning the byte count.
async fn loopback() -> (tokio::net::TcpStream, tokio::task::JoinHandle<u64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let drained = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        tokio::io::copy(&mut socket, &mut tokio::io::sink()).await.unwrap()
    });
    let socket = tokio::net::TcpStream::connect(address).await.unwrap();
    (socket, drained)
}

criterion_group!(benches, reads);
criterion_main!(benches);
