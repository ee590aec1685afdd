//! Decompression bombs for the image-limit tests: zlib streams that inflate enormously.

/// Writes deflate bits least-significant first (RFC 1951 §3.1.1).
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.bits;
        self.bits += count;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    /// Writes a Huffman code, which deflate packs most-significant bit first.
    fn code(&mut self, code: u64, len: u32) {
        let reversed = code.reverse_bits() >> (64 - len);
        self.put(reversed, len);
    }
}

/// A zlib stream of `len` zero bytes at deflate's best ratio (about 1030:1, so 1 GiB takes
/// 1 MB): one dynamic-Huffman block whose codes are literal 0 and end-of-block (2 bits each)
/// and length 258 and distance 1 (1 bit each), so each 258-byte copy costs 2 bits.
pub fn zlib_zeros(len: u64) -> Vec<u8> {
    let mut bits = BitWriter { out: vec![0x78, 0x01], acc: 0, bits: 0 };
    bits.put(1, 1); // BFINAL
    bits.put(2, 2); // BTYPE = 10, dynamic Huffman codes
    bits.put(29, 5); // HLIT: 286 literal/length codes, up to 285 (length 258)
    bits.put(1, 5); // HDIST: 2 distance codes
    bits.put(14, 4); // HCLEN: 18 code length codes, in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        // Code lengths 0, 1, 2 and 18 (a run of zeros) get 2-bit codes: 00, 01, 10, 11.
        bits.put(if matches!(symbol, 0 | 1 | 2 | 18) { 2 } else { 0 }, 3);
    }
    let zeros = |bits: &mut BitWriter, count: u64| {
        bits.code(0b11, 2);
        bits.put(count - 11, 7);
    };
    bits.code(0b10, 2); // literal 0: length 2
    zeros(&mut bits, 138); // literals 1..=255: unused
    zeros(&mut bits, 117);
    bits.code(0b10, 2); // end of block: length 2
    zeros(&mut bits, 28); // lengths 257..=284: unused
    bits.code(0b01, 2); // length 258 (code 285): length 1
    bits.code(0b01, 2); // distance codes 0 and 1: length 1 each
    bits.code(0b01, 2);
    // Canonical codes: 285 → 0, literal 0 → 10, end of block → 11; distance 1 → 0.
    bits.code(0b10, 2);
    let mut left = len - 1;
    while left >= 258 {
        bits.code(0, 1);
        bits.code(0, 1);
        left -= 258;
    }
    for _ in 0..left {
        bits.code(0b10, 2);
    }
    bits.code(0b11, 2);
    bits.put(0, 7); // pad to a byte
    let mut out = bits.out;
    // Adler-32 of zeros: a stays 1, b adds 1 per byte.
    let adler = (((len % 65_521) as u32) << 16) | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}
