/*
** record.c -- the on-disk format, byte by byte: file header, record, hint
** header/entry/trailer and the MERGE manifest.  docs/FORMAT.md describes the
** same bytes; this file is the only code that knows offsets inside them.
**
** Invariants:
**  - Integers are little-endian, written byte by byte (no host-order casts).
**  - CRC is the CRC-32 of zlib's crc32() (docs/FORMAT.md), computed by two
**    libraries that give zlib's values faster: libdeflate_crc32() below 256
**    bytes (PCLMUL; 20 ns for a 132-byte record against zlib's ~270 ns),
**    and Intel ISA-L's crc32_gzip_refl() from 256 bytes on, which folds with
**    VPCLMULQDQ where the CPU has it (a 4 KiB record: 105 ns against
**    libdeflate's 367 ns; it is the slower one on short inputs).  Measured
**    on the reference machine.  test_record checks both against zlib.
**    Each encoder and its decoder sit side by side and mirror each other.
**  - Decoders never trust a size before range-checking it; a header that
**    decodes is "plausible", the CRC over the whole record settles it.
*/
#include "bitcask.h"
#include "format.h"

#include <isa-l/crc.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>

static const char FILE_MAGIC[8] = {'B', 'C', 'A', 'S', 'K', 'D', 'A', 'T'};
static const char HINT_MAGIC[8] = {'B', 'C', 'A', 'S', 'K', 'H', 'N', 'T'};
static const char TRAILER_MAGIC[4] = {'B', 'C', 'H', 'E'};
static const char MERGE_MAGIC[8] = {'B', 'C', 'A', 'S', 'K', 'M', 'R', 'G'};

/* ISA-L's folding code runs on 256- and 512-bit registers and returns
** without VZEROUPPER.  Left dirty, their upper halves make every legacy-SSE
** instruction the process runs afterwards pay a transition penalty, until
** something clears them -- and glibc's AVX-512 string functions, which use
** only registers 16-31, do not: 1M batched puts took 2.5 times as long with
** a CRC of this size every few milliseconds (test_ahint).  So clear them
** after each call, on a CPU that has them.  Nothing vector-valued is live
** across the call (the ABI makes every vector register caller-saved). */
static uint32_t crc_isal(uint32_t crc, const void *p, size_t n) {
  uint32_t c = crc32_gzip_refl(crc, p, n);
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx"))
    __asm__ volatile("vzeroupper" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
                     "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                     "xmm13", "xmm14", "xmm15");
#endif
  return c;
}

/* CRC-32 of p[0..n) continuing from crc (0 to start). */
static uint32_t crc_more(uint32_t crc, const void *p, size_t n) {
  /* (libdeflate also takes a NULL p, returning crc: the tests' torn
  ** headers are encoded so.) */
  if (n >= 256 && p) return crc_isal(crc, p, n);
  return libdeflate_crc32(crc, p, n);
}

uint32_t bc_crc32(uint32_t crc, const void *p, size_t n) { return crc_more(crc, p, n); }

/* Product of a and b, polynomials over GF(2) in the CRC's reflected bit
** order (bit 31 is x^0), modulo the CRC-32 polynomial. */
static uint32_t crc_mulmod(uint32_t a, uint32_t b) {
  uint32_t p = 0;
  for (int i = 0; i < 32; i++) {
    if (a & (UINT32_C(0x80000000) >> i)) p ^= b;
    b = b & 1 ? (b >> 1) ^ UINT32_C(0xEDB88320) : b >> 1;
  }
  return p;
}

uint32_t bc_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2) {
  /* crc(A || B) = crc(A) * x^(8 len(B)) + crc(B) (mod the polynomial): the
  ** CRC's initial and final inversions cancel out in this form.  x^(8n)
  ** by squaring: sq runs through x^8, x^16, x^32, ... */
  uint32_t xn = UINT32_C(0x80000000); /* x^0 */
  uint32_t sq = UINT32_C(0x00800000); /* x^8 */
  for (uint64_t n = len2; n; n >>= 1) {
    if (n & 1) xn = crc_mulmod(sq, xn);
    sq = crc_mulmod(sq, sq);
  }
  return crc_mulmod(xn, crc1) ^ crc2;
}

/* ------------------------------------------------------------ file header */

void bc_file_header_encode(unsigned char out[BC_FILE_HEADER_SIZE], uint32_t id,
                           uint32_t flags) {
  memset(out, 0, BC_FILE_HEADER_SIZE);
  memcpy(out, FILE_MAGIC, 8);
  bc_put_u32(out + 8, BC_FORMAT_VERSION);
  bc_put_u32(out + 12, flags);
  bc_put_u32(out + 16, id);
  bc_put_u32(out + 28, crc_more(0, out, 28));
}

int bc_file_header_decode(const unsigned char in[BC_FILE_HEADER_SIZE],
                          uint32_t *version, uint32_t *flags, uint32_t *id) {
  if (memcmp(in, FILE_MAGIC, 8) != 0) return -1;
  if (bc_get_u32(in + 28) != crc_more(0, in, 28)) return -1;
  *version = bc_get_u32(in + 8);
  *flags = bc_get_u32(in + 12);
  *id = bc_get_u32(in + 16);
  return 0;
}

/* ----------------------------------------------------------------- record */

/* Header bytes 4..31 of r. */
static void rec_fields(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r) {
  out[4] = r->type;
  out[5] = r->meta;
  out[6] = 0;
  out[7] = 0;
  bc_put_u64(out + 8, r->seq);
  bc_put_u64(out + 16, r->txn);
  bc_put_u32(out + 24, r->klen);
  bc_put_u32(out + 28, r->vlen);
}

void bc_rec_encode(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r,
                   const void *key, const void *value) {
  rec_fields(out, r);
  uint32_t crc = crc_more(0, out + 4, BC_REC_HEADER_SIZE - 4);
  if (r->klen) crc = crc_more(crc, key, r->klen);
  if (r->vlen) crc = crc_more(crc, value, r->vlen);
  bc_put_u32(out, crc);
}

void bc_rec_encode_in_place(unsigned char *rec, const bc_rec *r) {
  rec_fields(rec, r);
  bc_put_u32(rec, crc_more(0, rec + 4, BC_REC_HEADER_SIZE - 4 + (size_t)r->klen + r->vlen));
}

int bc_rec_decode(const unsigned char in[BC_REC_HEADER_SIZE], bc_rec *r,
                  uint32_t *crc) {
  *crc = bc_get_u32(in);
  r->type = in[4];
  r->meta = in[5];
  r->seq = bc_get_u64(in + 8);
  r->txn = bc_get_u64(in + 16);
  r->klen = bc_get_u32(in + 24);
  r->vlen = bc_get_u32(in + 28);
  if (in[6] != 0 || in[7] != 0) return -1;
  if (r->klen > BC_MAX_KEY_SIZE || r->vlen > BC_MAX_VALUE_SIZE) return -1;
  if (r->seq == 0 || r->seq > BC_MAX_SEQ) return -1;
  switch (r->type) {
    case BC_REC_PUT:
      return 0;
    case BC_REC_TOMBSTONE:
      return (r->vlen == 0 && r->meta == 0) ? 0 : -1;
    case BC_REC_COMMIT:
      /* 8 bytes (the count) in format 1, 16 (count, durability claim) in
      ** format 2; either is read in a file of either version. */
      return (r->txn != 0 && r->klen == 0 &&
              (r->vlen == BC_COMMIT_V1_SIZE || r->vlen == BC_COMMIT_SIZE)) ? 0 : -1;
    case BC_REC_ROLLBACK_TO:
      return (r->txn != 0 && r->klen == 0 && r->vlen == 8) ? 0 : -1;
    default:
      return -1;
  }
}

int bc_rec_crc_ok(const unsigned char *rec, const bc_rec *r, uint32_t crc) {
  size_t n = (size_t)BC_REC_HEADER_SIZE - 4 + r->klen + r->vlen;
  return crc_more(0, rec + 4, n) == crc;
}

/* ------------------------------------------------------------------- hint */

void bc_hint_header_encode(unsigned char out[BC_HINT_HEADER_SIZE], uint32_t id,
                           uint64_t data_size) {
  memset(out, 0, BC_HINT_HEADER_SIZE);
  memcpy(out, HINT_MAGIC, 8);
  bc_put_u32(out + 8, BC_HINT_VERSION);
  bc_put_u32(out + 12, id);
  bc_put_u64(out + 16, data_size);
  bc_put_u32(out + 28, crc_more(0, out, 28));
}

int bc_hint_header_decode(const unsigned char in[BC_HINT_HEADER_SIZE],
                          uint32_t *version, uint32_t *id, uint64_t *data_size) {
  if (memcmp(in, HINT_MAGIC, 8) != 0) return -1;
  if (bc_get_u32(in + 28) != crc_more(0, in, 28)) return -1;
  *version = bc_get_u32(in + 8);
  *id = bc_get_u32(in + 12);
  *data_size = bc_get_u64(in + 16);
  return 0;
}

void bc_hint_entry_encode(unsigned char out[BC_HINT_ENTRY_SIZE], const bc_rec *r,
                          uint64_t off) {
  memset(out, 0, BC_HINT_ENTRY_SIZE);
  out[0] = r->type;
  out[1] = r->meta;
  bc_put_u32(out + 4, r->klen);
  bc_put_u32(out + 8, r->vlen);
  bc_put_u64(out + 16, r->seq);
  bc_put_u64(out + 24, r->txn);
  bc_put_u64(out + 32, off);
}

int bc_hint_entry_decode(const unsigned char in[BC_HINT_ENTRY_SIZE], bc_rec *r,
                         uint64_t *off) {
  r->type = in[0];
  r->meta = in[1];
  r->klen = bc_get_u32(in + 4);
  r->vlen = bc_get_u32(in + 8);
  r->seq = bc_get_u64(in + 16);
  r->txn = bc_get_u64(in + 24);
  *off = bc_get_u64(in + 32);
  if (r->type < BC_REC_PUT || r->type > BC_REC_ROLLBACK_TO) return -1;
  if (r->klen > BC_MAX_KEY_SIZE || r->vlen > BC_MAX_VALUE_SIZE) return -1;
  if (r->seq == 0 || r->seq > BC_MAX_SEQ) return -1;
  return 0;
}

void bc_hint_trailer_encode(unsigned char out[BC_HINT_TRAILER_SIZE],
                            uint32_t count, const unsigned char *before,
                            size_t nbefore) {
  bc_hint_trailer_encode_crc(out, count, crc_more(0, before, nbefore));
}

void bc_hint_trailer_encode_crc(unsigned char out[BC_HINT_TRAILER_SIZE],
                                uint32_t count, uint32_t crc) {
  memcpy(out, TRAILER_MAGIC, 4);
  bc_put_u32(out + 4, count);
  bc_put_u32(out + 8, 0);
  bc_put_u32(out + 12, crc);
}

int bc_hint_trailer_check(const unsigned char in[BC_HINT_TRAILER_SIZE],
                          uint32_t *count, const unsigned char *before,
                          size_t nbefore) {
  if (memcmp(in, TRAILER_MAGIC, 4) != 0) return -1;
  if (bc_get_u32(in + 12) != crc_more(0, before, nbefore)) return -1;
  *count = bc_get_u32(in + 4);
  return 0;
}

/* --------------------------------------------------------- MERGE manifest */

unsigned char *bc_manifest_encode(const bc_manifest *m, size_t *len) {
  size_t n = 20 + 4 * ((size_t)m->n_inputs + m->n_outputs) + 4;
  unsigned char *p = malloc(n);
  if (!p) return NULL;
  memcpy(p, MERGE_MAGIC, 8);
  bc_put_u32(p + 8, BC_MANIFEST_VERSION);
  bc_put_u32(p + 12, m->n_inputs);
  bc_put_u32(p + 16, m->n_outputs);
  size_t at = 20;
  for (uint32_t i = 0; i < m->n_inputs; i++, at += 4) bc_put_u32(p + at, m->inputs[i]);
  for (uint32_t i = 0; i < m->n_outputs; i++, at += 4) bc_put_u32(p + at, m->outputs[i]);
  bc_put_u32(p + at, crc_more(0, p, at));
  *len = n;
  return p;
}

int bc_manifest_decode(const unsigned char *in, size_t len, bc_manifest *m) {
  memset(m, 0, sizeof *m);
  if (len < 24 || memcmp(in, MERGE_MAGIC, 8) != 0) return -1;
  uint32_t ni = bc_get_u32(in + 12), no = bc_get_u32(in + 16);
  if (bc_get_u32(in + 8) != BC_MANIFEST_VERSION) return -1;
  if ((uint64_t)ni + no > (len - 24) / 4) return -1;
  if (len != 24 + 4 * ((size_t)ni + no)) return -1;
  if (bc_get_u32(in + len - 4) != crc_more(0, in, len - 4)) return -1;
  m->inputs = malloc(4 * ((size_t)ni + 1));
  m->outputs = malloc(4 * ((size_t)no + 1));
  if (!m->inputs || !m->outputs) {
    bc_manifest_free(m);
    return -2;
  }
  m->n_inputs = ni;
  m->n_outputs = no;
  for (uint32_t i = 0; i < ni; i++) m->inputs[i] = bc_get_u32(in + 20 + 4 * i);
  for (uint32_t i = 0; i < no; i++)
    m->outputs[i] = bc_get_u32(in + 20 + 4 * ((size_t)ni + i));
  return 0;
}

void bc_manifest_free(bc_manifest *m) {
  free(m->inputs);
  free(m->outputs);
  memset(m, 0, sizeof *m);
}
