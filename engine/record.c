/*
** record.c -- the on-disk format, byte by byte: file header, record, hint
** header/entry/trailer and the MERGE manifest.  docs/FORMAT.md describes the
** same bytes.  Their field offsets are named once, beside their sizes in
** format.h (BC_REC_OFF_*, BC_HENT_OFF_*, ...; the manifest's here): code
** outside this file reads a field through those names or the inline
** readers there (bc_rec_peek), never at a numeric offset.
**
** Invariants:
**  - Integers are little-endian, written byte by byte (no host-order casts).
**  - CRC is the CRC-32 of zlib's crc32() (docs/FORMAT.md), computed by two
**    libraries that give zlib's values faster than zlib does, each where it
**    is the faster of the two: libdeflate_crc32() (PCLMUL) below 256 bytes,
**    and Intel ISA-L's crc32_gzip_refl() from 256 bytes on, which folds with
**    VPCLMULQDQ where the CPU has it and is the slower one on short inputs.
**    test_record checks both against zlib.
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
** only registers 16-31, do not: batched puts, with a CRC of this size every
** few milliseconds (the active file's hint spills), ran far slower.  So
** clear them after each call, on a CPU that has them.  Nothing
** vector-valued is live across the call (the ABI makes every vector
** register caller-saved). */
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
  memcpy(out + BC_FHDR_OFF_MAGIC, FILE_MAGIC, sizeof FILE_MAGIC);
  bc_put_u32(out + BC_FHDR_OFF_VERSION, BC_FORMAT_VERSION);
  bc_put_u32(out + BC_FHDR_OFF_FLAGS, flags);
  bc_put_u32(out + BC_FHDR_OFF_FILE_ID, id);
  bc_put_u32(out + BC_FHDR_OFF_CRC, crc_more(0, out, BC_FHDR_OFF_CRC));
}

int bc_file_header_decode(const unsigned char in[BC_FILE_HEADER_SIZE],
                          uint32_t *version, uint32_t *flags, uint32_t *id) {
  if (memcmp(in + BC_FHDR_OFF_MAGIC, FILE_MAGIC, sizeof FILE_MAGIC) != 0) return -1;
  if (bc_get_u32(in + BC_FHDR_OFF_CRC) != crc_more(0, in, BC_FHDR_OFF_CRC)) return -1;
  *version = bc_get_u32(in + BC_FHDR_OFF_VERSION);
  *flags = bc_get_u32(in + BC_FHDR_OFF_FLAGS);
  *id = bc_get_u32(in + BC_FHDR_OFF_FILE_ID);
  return 0;
}

/* ----------------------------------------------------------------- record */

/* The CRC of a record covers everything after its own field. */
#define REC_CRC_FROM (BC_REC_OFF_CRC + 4)

/* Header bytes 4..31 of r: every field but the CRC. */
static void rec_fields(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r) {
  out[BC_REC_OFF_TYPE] = r->type;
  out[BC_REC_OFF_META] = r->meta;
  out[BC_REC_OFF_RESERVED] = 0;
  out[BC_REC_OFF_RESERVED + 1] = 0;
  bc_put_u64(out + BC_REC_OFF_SEQ, r->seq);
  bc_put_u64(out + BC_REC_OFF_TXN, r->txn);
  bc_put_u32(out + BC_REC_OFF_KLEN, r->klen);
  bc_put_u32(out + BC_REC_OFF_VLEN, r->vlen);
}

void bc_rec_encode(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r,
                   const void *key, const void *value) {
  rec_fields(out, r);
  uint32_t crc = crc_more(0, out + REC_CRC_FROM, BC_REC_HEADER_SIZE - REC_CRC_FROM);
  if (r->klen) crc = crc_more(crc, key, r->klen);
  if (r->vlen) crc = crc_more(crc, value, r->vlen);
  bc_put_u32(out + BC_REC_OFF_CRC, crc);
}

void bc_rec_encode_in_place(unsigned char *rec, const bc_rec *r) {
  rec_fields(rec, r);
  bc_put_u32(rec + BC_REC_OFF_CRC,
             crc_more(0, rec + REC_CRC_FROM,
                      BC_REC_HEADER_SIZE - REC_CRC_FROM + (size_t)r->klen + r->vlen));
}

int bc_rec_decode(const unsigned char in[BC_REC_HEADER_SIZE], bc_rec *r,
                  uint32_t *crc) {
  *crc = bc_get_u32(in + BC_REC_OFF_CRC);
  bc_rec_peek(in, r);
  if (in[BC_REC_OFF_RESERVED] != 0 || in[BC_REC_OFF_RESERVED + 1] != 0) return -1;
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
      return (r->txn != 0 && r->klen == 0 && r->vlen == BC_ROLLBACK_TO_SIZE) ? 0 : -1;
    default:
      return -1;
  }
}

int bc_rec_crc_ok(const unsigned char *rec, const bc_rec *r, uint32_t crc) {
  size_t n = (size_t)BC_REC_HEADER_SIZE - REC_CRC_FROM + r->klen + r->vlen;
  return crc_more(0, rec + REC_CRC_FROM, n) == crc;
}

/* ------------------------------------------------------------------- hint */

void bc_hint_header_encode(unsigned char out[BC_HINT_HEADER_SIZE], uint32_t id,
                           uint64_t data_size) {
  memset(out, 0, BC_HINT_HEADER_SIZE);
  memcpy(out + BC_HHDR_OFF_MAGIC, HINT_MAGIC, sizeof HINT_MAGIC);
  bc_put_u32(out + BC_HHDR_OFF_VERSION, BC_HINT_VERSION);
  bc_put_u32(out + BC_HHDR_OFF_FILE_ID, id);
  bc_put_u64(out + BC_HHDR_OFF_DATA_SIZE, data_size);
  bc_put_u32(out + BC_HHDR_OFF_CRC, crc_more(0, out, BC_HHDR_OFF_CRC));
}

int bc_hint_header_decode(const unsigned char in[BC_HINT_HEADER_SIZE],
                          uint32_t *version, uint32_t *id, uint64_t *data_size) {
  if (memcmp(in + BC_HHDR_OFF_MAGIC, HINT_MAGIC, sizeof HINT_MAGIC) != 0) return -1;
  if (bc_get_u32(in + BC_HHDR_OFF_CRC) != crc_more(0, in, BC_HHDR_OFF_CRC)) return -1;
  *version = bc_get_u32(in + BC_HHDR_OFF_VERSION);
  *id = bc_get_u32(in + BC_HHDR_OFF_FILE_ID);
  *data_size = bc_get_u64(in + BC_HHDR_OFF_DATA_SIZE);
  return 0;
}

void bc_hint_entry_encode(unsigned char out[BC_HINT_ENTRY_SIZE], const bc_rec *r,
                          uint64_t off) {
  memset(out, 0, BC_HINT_ENTRY_SIZE);
  out[BC_HENT_OFF_TYPE] = r->type;
  out[BC_HENT_OFF_META] = r->meta;
  bc_put_u32(out + BC_HENT_OFF_KLEN, r->klen);
  bc_put_u32(out + BC_HENT_OFF_VLEN, r->vlen);
  bc_put_u64(out + BC_HENT_OFF_SEQ, r->seq);
  bc_put_u64(out + BC_HENT_OFF_TXN, r->txn);
  bc_put_u64(out + BC_HENT_OFF_OFFSET, off);
}

int bc_hint_entry_decode(const unsigned char in[BC_HINT_ENTRY_SIZE], bc_rec *r,
                         uint64_t *off) {
  r->type = in[BC_HENT_OFF_TYPE];
  r->meta = in[BC_HENT_OFF_META];
  r->klen = bc_get_u32(in + BC_HENT_OFF_KLEN);
  r->vlen = bc_get_u32(in + BC_HENT_OFF_VLEN);
  r->seq = bc_get_u64(in + BC_HENT_OFF_SEQ);
  r->txn = bc_get_u64(in + BC_HENT_OFF_TXN);
  *off = bc_get_u64(in + BC_HENT_OFF_OFFSET);
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
  memset(out, 0, BC_HINT_TRAILER_SIZE);
  memcpy(out + BC_HTRL_OFF_MAGIC, TRAILER_MAGIC, sizeof TRAILER_MAGIC);
  bc_put_u32(out + BC_HTRL_OFF_COUNT, count);
  bc_put_u32(out + BC_HTRL_OFF_CRC, crc);
}

int bc_hint_trailer_check(const unsigned char in[BC_HINT_TRAILER_SIZE],
                          uint32_t *count, const unsigned char *before,
                          size_t nbefore) {
  if (memcmp(in + BC_HTRL_OFF_MAGIC, TRAILER_MAGIC, sizeof TRAILER_MAGIC) != 0) return -1;
  if (bc_get_u32(in + BC_HTRL_OFF_CRC) != crc_more(0, before, nbefore)) return -1;
  *count = bc_hint_trailer_count(in);
  return 0;
}

/* --------------------------------------------------------- MERGE manifest */

/* The manifest is variable-sized: these offsets, its ids from
** MANIFEST_OFF_IDS (inputs, then outputs, u32 each) and a CRC (u32) of
** every byte before it.  Only this file reads or writes one. */
#define MANIFEST_OFF_MAGIC 0u     /* 8 bytes "BCASKMRG" */
#define MANIFEST_OFF_VERSION 8u
#define MANIFEST_OFF_NINPUTS 12u
#define MANIFEST_OFF_NOUTPUTS 16u
#define MANIFEST_OFF_IDS 20u
#define MANIFEST_MIN_SIZE (MANIFEST_OFF_IDS + 4u) /* no ids, the CRC */

unsigned char *bc_manifest_encode(const bc_manifest *m, size_t *len) {
  size_t n = MANIFEST_MIN_SIZE + 4 * ((size_t)m->n_inputs + m->n_outputs);
  unsigned char *p = malloc(n);
  if (!p) return NULL;
  memcpy(p + MANIFEST_OFF_MAGIC, MERGE_MAGIC, sizeof MERGE_MAGIC);
  bc_put_u32(p + MANIFEST_OFF_VERSION, BC_MANIFEST_VERSION);
  bc_put_u32(p + MANIFEST_OFF_NINPUTS, m->n_inputs);
  bc_put_u32(p + MANIFEST_OFF_NOUTPUTS, m->n_outputs);
  size_t at = MANIFEST_OFF_IDS;
  for (uint32_t i = 0; i < m->n_inputs; i++, at += 4) bc_put_u32(p + at, m->inputs[i]);
  for (uint32_t i = 0; i < m->n_outputs; i++, at += 4) bc_put_u32(p + at, m->outputs[i]);
  bc_put_u32(p + at, crc_more(0, p, at));
  *len = n;
  return p;
}

int bc_manifest_decode(const unsigned char *in, size_t len, bc_manifest *m) {
  memset(m, 0, sizeof *m);
  if (len < MANIFEST_MIN_SIZE ||
      memcmp(in + MANIFEST_OFF_MAGIC, MERGE_MAGIC, sizeof MERGE_MAGIC) != 0)
    return -1;
  uint32_t ni = bc_get_u32(in + MANIFEST_OFF_NINPUTS);
  uint32_t no = bc_get_u32(in + MANIFEST_OFF_NOUTPUTS);
  if (bc_get_u32(in + MANIFEST_OFF_VERSION) != BC_MANIFEST_VERSION) return -1;
  if ((uint64_t)ni + no > (len - MANIFEST_MIN_SIZE) / 4) return -1;
  if (len != MANIFEST_MIN_SIZE + 4 * ((size_t)ni + no)) return -1;
  if (bc_get_u32(in + len - 4) != crc_more(0, in, len - 4)) return -1;
  m->inputs = malloc(4 * ((size_t)ni + 1));
  m->outputs = malloc(4 * ((size_t)no + 1));
  if (!m->inputs || !m->outputs) {
    bc_manifest_free(m);
    return -2;
  }
  m->n_inputs = ni;
  m->n_outputs = no;
  const unsigned char *ids = in + MANIFEST_OFF_IDS;
  for (uint32_t i = 0; i < ni; i++) m->inputs[i] = bc_get_u32(ids + 4 * i);
  for (uint32_t i = 0; i < no; i++) m->outputs[i] = bc_get_u32(ids + 4 * ((size_t)ni + i));
  return 0;
}

void bc_manifest_free(bc_manifest *m) {
  free(m->inputs);
  free(m->outputs);
  memset(m, 0, sizeof *m);
}
