// A minimal Ogg Opus muxer and demuxer (RFC 3533, RFC 7845) for entropi's page: the browser's
// WebCodecs encode and decode raw Opus packets; moshi's protocol carries Ogg pages.
"use strict";
const Ogg = (() => {
  const CRC = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let j = 0; j < 8; j++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    CRC[i] = r >>> 0;
  }
  function crc32(bytes) {
    let c = 0;
    for (const b of bytes) c = ((c << 8) ^ CRC[((c >>> 24) ^ b) & 0xff]) >>> 0;
    return c;
  }

  class Muxer {
    constructor(sampleRate) { this.serial = (Math.random() * 2 ** 31) | 0; this.seq = 0;
      this.granule = 0; this.sampleRate = sampleRate; }
    headers() {  // OpusHead (its own page, BOS) and OpusTags
      const head = new Uint8Array(19); const v = new DataView(head.buffer);
      head.set([79, 112, 117, 115, 72, 101, 97, 100]);  // "OpusHead"
      head[8] = 1; head[9] = 1; v.setUint16(10, 312, true); v.setUint32(12, this.sampleRate, true);
      const vendor = new TextEncoder().encode("entropi");
      const tags = new Uint8Array(8 + 4 + vendor.length + 4);
      tags.set([79, 112, 117, 115, 84, 97, 103, 115]);  // "OpusTags"
      new DataView(tags.buffer).setUint32(8, vendor.length, true); tags.set(vendor, 12);
      return [this.page([head], 2, 0), this.page([tags], 0, 0)];
    }
    audio(packets, samples48k) { this.granule += samples48k;
      return this.page(packets, 0, this.granule); }
    page(packets, flags, granule) {
      const lacing = [];
      for (const p of packets) {
        let n = p.length;
        while (n >= 255) { lacing.push(255); n -= 255; }
        lacing.push(n);
      }
      const body = packets.reduce((s, p) => s + p.length, 0);
      const out = new Uint8Array(27 + lacing.length + body); const v = new DataView(out.buffer);
      out.set([79, 103, 103, 83]); out[4] = 0; out[5] = flags;
      v.setUint32(6, granule % 2 ** 32, true); v.setUint32(10, Math.floor(granule / 2 ** 32), true);
      v.setUint32(14, this.serial, true); v.setUint32(18, this.seq++, true);
      out[26] = lacing.length; out.set(lacing, 27);
      let o = 27 + lacing.length;
      for (const p of packets) { out.set(p, o); o += p.length; }
      v.setUint32(22, crc32(out), true);
      return out;
    }
  }

  class Demuxer {  // bytes in (any split), whole packets out
    constructor() { this.buf = new Uint8Array(0); this.partial = []; }
    push(bytes) {
      const joined = new Uint8Array(this.buf.length + bytes.length);
      joined.set(this.buf); joined.set(bytes, this.buf.length);
      this.buf = joined;
      const packets = [];
      for (;;) {
        const b = this.buf;
        if (b.length < 27) break;
        if (b[0] !== 79 || b[1] !== 103 || b[2] !== 103 || b[3] !== 83) {
          this.buf = new Uint8Array(0); this.partial = []; break;  // lost sync: start over
        }
        const nseg = b[26];
        if (b.length < 27 + nseg) break;
        let size = 0;
        for (let i = 0; i < nseg; i++) size += b[27 + i];
        if (b.length < 27 + nseg + size) break;
        let o = 27 + nseg;
        for (let i = 0; i < nseg; i++) {
          const len = b[27 + i];
          this.partial.push(b.subarray(o, o + len)); o += len;
          if (len < 255) {
            const n = this.partial.reduce((s, p) => s + p.length, 0);
            const pkt = new Uint8Array(n); let k = 0;
            for (const p of this.partial) { pkt.set(p, k); k += p.length; }
            this.partial = []; packets.push(pkt);
          }
        }
        this.buf = b.slice(o);
      }
      return packets;
    }
  }

  function isHeader(pkt) {
    const s = String.fromCharCode(...pkt.subarray(0, 8));
    return s === "OpusHead" || s === "OpusTags";
  }
  return { Muxer, Demuxer, isHeader };
})();
