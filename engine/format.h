/*
** format.h -- the on-disk format (docs/FORMAT.md), record.c's interface:
** the sizes and constants of every header, record, hint entry and the MERGE
** manifest, their encoders and decoders, and the format's CRC-32.
*/
#ifndef BC_FORMAT_H
#define BC_FORMAT_H

#include "bitcask.h"

#include <stddef.h>
#include <stdint.h>

/* Sizes and field offsets of every fixed-size structure (docs/FORMAT.md):
** record.c encodes and decodes them; other files use the decoders, or the
** inline readers below where a file's records are framed or a hint is
** walked without a whole decode. */
#define BC_FILE_HEADER_SIZE 32u
#define BC_FHDR_OFF_MAGIC 0u     /* 8 bytes "BCASKDAT" */
#define BC_FHDR_OFF_VERSION 8u
#define BC_FHDR_OFF_FLAGS 12u
#define BC_FHDR_OFF_FILE_ID 16u
#define BC_FHDR_OFF_CRC 28u      /* of bytes [0, 28) */

#define BC_REC_HEADER_SIZE 32u
#define BC_REC_OFF_CRC 0u        /* of bytes [4, end of value) */
#define BC_REC_OFF_TYPE 4u
#define BC_REC_OFF_META 5u
#define BC_REC_OFF_RESERVED 6u   /* 2 bytes, zero */
#define BC_REC_OFF_SEQ 8u
#define BC_REC_OFF_TXN 16u
#define BC_REC_OFF_KLEN 24u
#define BC_REC_OFF_VLEN 28u

#define BC_HINT_HEADER_SIZE 32u
#define BC_HHDR_OFF_MAGIC 0u     /* 8 bytes "BCASKHNT" */
#define BC_HHDR_OFF_VERSION 8u
#define BC_HHDR_OFF_FILE_ID 12u
#define BC_HHDR_OFF_DATA_SIZE 16u
#define BC_HHDR_OFF_CRC 28u      /* of bytes [0, 28) */

#define BC_HINT_ENTRY_SIZE 40u   /* then the key, or a marker's arg (u64) */
#define BC_HENT_OFF_TYPE 0u
#define BC_HENT_OFF_META 1u
#define BC_HENT_OFF_KLEN 4u
#define BC_HENT_OFF_VLEN 8u
#define BC_HENT_OFF_SEQ 16u
#define BC_HENT_OFF_TXN 24u
#define BC_HENT_OFF_OFFSET 32u

#define BC_HINT_TRAILER_SIZE 16u
#define BC_HTRL_OFF_MAGIC 0u     /* 4 bytes "BCHE" */
#define BC_HTRL_OFF_COUNT 4u
#define BC_HTRL_OFF_CRC 12u      /* of every byte of the file before it */

#define BC_FILE_FLAG_MERGED 1u
/* Hint files and the MERGE manifest did not change with data file format 2:
** they keep version 1. */
#define BC_HINT_VERSION 1u
#define BC_MANIFEST_VERSION 1u
/* The value of a COMMIT: the record count (u64), then, from data file format
** 2 on, the durability claim (u64): the offset in its own data file up to
** which that file was known durably synced when the COMMIT was appended. */
#define BC_COMMIT_V1_SIZE 8u
#define BC_COMMIT_SIZE 16u
#define BC_COMMIT_OFF_COUNT 0u
#define BC_COMMIT_OFF_CLAIM 8u
/* The value of a ROLLBACK_TO: S (u64).  The first 8 bytes of either
** marker's value -- the count, or S -- are its "arg" (bc_recinfo.arg),
** which a hint entry of a marker holds in place of a key. */
#define BC_ROLLBACK_TO_SIZE 8u
#define BC_ROLLBACK_TO_OFF_S 0u

enum { BC_REC_PUT = 1, BC_REC_TOMBSTONE = 2, BC_REC_COMMIT = 3,
       BC_REC_ROLLBACK_TO = 4 };

/* Largest record offset and sequence number the keydir can hold (40 and 56
** bits, see keydir.c).  Rotation keeps offsets below max_file_size <= 2^40. */
#define BC_MAX_OFFSET ((UINT64_C(1) << 40) - 1)
#define BC_MAX_SEQ ((UINT64_C(1) << 56) - 1)
#define BC_MAX_FILE_SIZE_LIMIT (UINT64_C(1) << 40)

/* A record header, decoded. */
typedef struct bc_rec {
  uint8_t type;
  uint8_t meta;
  uint64_t seq;
  uint64_t txn;
  uint32_t klen;
  uint32_t vlen;
} bc_rec;

/* One record as seen by a walk of a data file or of a hint file.  key
** points into the reader's buffer (valid during the callback only).  value is
** NULL when read from a hint.  arg is the first 8 bytes of a transaction
** marker's value: S of a ROLLBACK_TO, the record count of a COMMIT. */
typedef struct bc_recinfo {
  bc_rec r;
  uint64_t off;              /* offset of the record in its data file */
  const unsigned char *key;  /* borrowed */
  const unsigned char *value; /* borrowed, NULL from a hint */
  uint64_t arg;
  int damaged;               /* the record fails its CRC: header, key and
                             ** value are untrusted (data file walks
                             ** only) */
  int hashed;                /* hash is the key's bc_kd_hash in the store's
                             ** keydir (hint loads, which hash ahead) */
  uint64_t hash;
} bc_recinfo;

static inline uint64_t bc_rec_size(uint32_t klen, uint32_t vlen) {
  return (uint64_t)BC_REC_HEADER_SIZE + klen + vlen;
}

/* Inline, and written so that the compiler makes each one a single load or
** store (on a little-endian machine): hint files are decoded field by field
** at open, millions of times. */
static inline void bc_put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void bc_put_u64(unsigned char *p, uint64_t v) {
  bc_put_u32(p, (uint32_t)v);
  bc_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t bc_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t bc_get_u64(const unsigned char *p) {
  return (uint64_t)bc_get_u32(p) | (uint64_t)bc_get_u32(p + 4) << 32;
}

/* A record header's fields as stored, unchecked: the first step of
** bc_rec_decode, and what a walk frames a damaged record with. */
static inline void bc_rec_peek(const unsigned char in[BC_REC_HEADER_SIZE], bc_rec *r) {
  r->type = in[BC_REC_OFF_TYPE];
  r->meta = in[BC_REC_OFF_META];
  r->seq = bc_get_u64(in + BC_REC_OFF_SEQ);
  r->txn = bc_get_u64(in + BC_REC_OFF_TXN);
  r->klen = bc_get_u32(in + BC_REC_OFF_KLEN);
  r->vlen = bc_get_u32(in + BC_REC_OFF_VLEN);
}
/* The arg of a COMMIT or ROLLBACK_TO: the first 8 bytes of its value (in a
** hint, of what follows its entry). */
static inline uint64_t bc_rec_arg(const unsigned char *value) {
  return bc_get_u64(value);
}
/* The entry count a hint trailer holds, unchecked (bc_hint_trailer_check
** checks it). */
static inline uint32_t bc_hint_trailer_count(const unsigned char in[BC_HINT_TRAILER_SIZE]) {
  return bc_get_u32(in + BC_HTRL_OFF_COUNT);
}

/* The 32-byte header of data file `id` (flags: BC_FILE_FLAG_MERGED for a
** merge output) in the current format version, and its decoder. */
void bc_file_header_encode(unsigned char out[BC_FILE_HEADER_SIZE], uint32_t id,
                           uint32_t flags);
/* 0: valid (fields filled); -1: bad magic or CRC.  The version is returned
** unchecked so the caller can tell BC_VERSION from damage. */
int bc_file_header_decode(const unsigned char in[BC_FILE_HEADER_SIZE],
                          uint32_t *version, uint32_t *flags, uint32_t *id);

/* Encode the 32-byte header of r (whose klen/vlen describe key and value) and
** compute the record CRC over header bytes 4..31, key and value. */
void bc_rec_encode(unsigned char out[BC_REC_HEADER_SIZE], const bc_rec *r,
                   const void *key, const void *value);
/* The same for a record whose key and value already follow its header at
** rec (bc_rec_size(klen, vlen) bytes): one CRC pass over them, where three
** calls over three pieces cost more for short records. */
void bc_rec_encode_in_place(unsigned char *rec, const bc_rec *r);
/* Decode and sanity-check a header (type, sizes, reserved bytes, marker
** shapes, seq range).  0: plausible, *crc receives the stored CRC; -1:
** malformed. */
int bc_rec_decode(const unsigned char in[BC_REC_HEADER_SIZE], bc_rec *r,
                  uint32_t *crc);
/* CRC check of a whole record held contiguously at rec (header+key+value). */
int bc_rec_crc_ok(const unsigned char *rec, const bc_rec *r, uint32_t crc);

/* The hint header of data file `id` describing data_size bytes of it, and
** its decoder: 0 valid (fields filled, the version unchecked, as for the
** file header), -1 bad magic or CRC. */
void bc_hint_header_encode(unsigned char out[BC_HINT_HEADER_SIZE], uint32_t id,
                           uint64_t data_size);
int bc_hint_header_decode(const unsigned char in[BC_HINT_HEADER_SIZE],
                          uint32_t *version, uint32_t *id, uint64_t *data_size);
/* One hint entry: r's type, meta, klen, vlen, seq, txn and the record's
** offset off in its data file.  The decoder returns 0, or -1 for a type,
** size or seq no record can have (the entries' CRC is the trailer's). */
void bc_hint_entry_encode(unsigned char out[BC_HINT_ENTRY_SIZE], const bc_rec *r,
                          uint64_t off);
int bc_hint_entry_decode(const unsigned char in[BC_HINT_ENTRY_SIZE], bc_rec *r,
                         uint64_t *off);
/* The trailer's CRC covers `before` (every byte of the file before it). */
void bc_hint_trailer_encode(unsigned char out[BC_HINT_TRAILER_SIZE],
                            uint32_t count, const unsigned char *before,
                            size_t nbefore);
/* The same, given the CRC of every byte before it. */
void bc_hint_trailer_encode_crc(unsigned char out[BC_HINT_TRAILER_SIZE],
                                uint32_t count, uint32_t crc);
/* The format's CRC-32 of p[0..n), continuing from crc (0 to start). */
uint32_t bc_crc32(uint32_t crc, const void *p, size_t n);
/* The CRC-32 of A || B from crc1 = CRC-32 of A, crc2 = CRC-32 of B and
** len2 = the length of B (zlib's crc32_combine). */
uint32_t bc_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
int bc_hint_trailer_check(const unsigned char in[BC_HINT_TRAILER_SIZE],
                          uint32_t *count, const unsigned char *before,
                          size_t nbefore);

/* The MERGE manifest.  Arrays owned by the struct (free with
** bc_manifest_free). */
typedef struct bc_manifest {
  uint32_t *inputs;
  uint32_t n_inputs;
  uint32_t *outputs;
  uint32_t n_outputs;
} bc_manifest;
/* *out: malloc'd encoding, owned by the caller.  NULL on NOMEM. */
unsigned char *bc_manifest_encode(const bc_manifest *m, size_t *len);
/* 0 ok (m filled, caller frees), -1 malformed, -2 NOMEM. */
int bc_manifest_decode(const unsigned char *in, size_t len, bc_manifest *m);
void bc_manifest_free(bc_manifest *m);

#endif /* BC_FORMAT_H */
