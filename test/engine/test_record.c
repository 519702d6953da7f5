/*
** test_record.c -- the on-disk format of docs/FORMAT.md, through the
** encoders and decoders of record.c: byte positions, round trips, the reach
** of every CRC (flip any covered byte and the check fails) and the rejection
** of malformed headers.
*/
#include "testutil.h"

/* ------------------------------------------------------------ integers */

static void test_integers_little_endian(void **state) {
  (void)state;
  unsigned char p[8];
  bc_put_u32(p, 0x11223344u);
  assert_int_equal(p[0], 0x44);
  assert_int_equal(p[1], 0x33);
  assert_int_equal(p[2], 0x22);
  assert_int_equal(p[3], 0x11);
  assert_int_equal(bc_get_u32(p), 0x11223344u);
  bc_put_u64(p, UINT64_C(0x0102030405060708));
  for (int i = 0; i < 8; i++) assert_int_equal(p[i], 8 - i);
  assert_true(bc_get_u64(p) == UINT64_C(0x0102030405060708));
  bc_put_u64(p, UINT64_MAX);
  assert_true(bc_get_u64(p) == UINT64_MAX);
  assert_int_equal(bc_rec_size(0, 0), 32);
  assert_true(bc_rec_size(BC_MAX_KEY_SIZE, BC_MAX_VALUE_SIZE) ==
              32 + (uint64_t)BC_MAX_KEY_SIZE + BC_MAX_VALUE_SIZE);
}

/* --------------------------------------------------------- file header */

static void test_file_header(void **state) {
  (void)state;
  unsigned char h[BC_FILE_HEADER_SIZE];
  bc_file_header_encode(h, 0xA1B2C3u, BC_FILE_FLAG_MERGED);
  assert_memory_equal(h, "BCASKDAT", 8);
  assert_int_equal(bc_get_u32(h + 8), BC_FORMAT_VERSION);
  assert_int_equal(bc_get_u32(h + 12), BC_FILE_FLAG_MERGED);
  assert_int_equal(bc_get_u32(h + 16), 0xA1B2C3u);
  for (int i = 20; i < 28; i++) assert_int_equal(h[i], 0);
  assert_int_equal(bc_get_u32(h + 28), (uint32_t)crc32(0, h, 28));

  uint32_t version = 0, flags = 0, id = 0;
  assert_int_equal(bc_file_header_decode(h, &version, &flags, &id), 0);
  assert_int_equal(version, BC_FORMAT_VERSION);
  assert_int_equal(flags, BC_FILE_FLAG_MERGED);
  assert_int_equal(id, 0xA1B2C3u);

  bc_file_header_encode(h, 1, 0);
  assert_int_equal(bc_file_header_decode(h, &version, &flags, &id), 0);
  assert_int_equal(flags, 0);
  assert_int_equal(id, 1);

  /* Every byte is covered by the magic or the CRC. */
  static const unsigned char masks[] = {0x01, 0x80, 0xFF};
  for (int i = 0; i < (int)BC_FILE_HEADER_SIZE; i++)
    for (size_t m = 0; m < sizeof masks; m++) {
      h[i] ^= masks[m];
      if (bc_file_header_decode(h, &version, &flags, &id) == 0)
        fail_msg("file header with byte %d ^ 0x%02x still decodes", i, masks[m]);
      h[i] ^= masks[m];
    }
  assert_int_equal(bc_file_header_decode(h, &version, &flags, &id), 0);

  /* A newer version is returned unchecked (the caller says BC_VERSION). */
  bc_put_u32(h + 8, BC_FORMAT_VERSION + 1);
  bc_put_u32(h + 28, (uint32_t)crc32(0, h, 28));
  assert_int_equal(bc_file_header_decode(h, &version, &flags, &id), 0);
  assert_int_equal(version, BC_FORMAT_VERSION + 1);
}

/* -------------------------------------------------------------- record */

/* Build a whole record (header + key + value) into a malloc'd buffer with
** `slack` zero bytes after it. */
static unsigned char *make_record(const bc_rec *r, const void *key, const void *value,
                                  size_t slack) {
  size_t n = (size_t)bc_rec_size(r->klen, r->vlen);
  unsigned char *p = calloc(1, n + slack);
  assert_non_null(p);
  bc_rec_encode(p, r, key, value);
  if (r->klen) memcpy(p + BC_REC_HEADER_SIZE, key, r->klen);
  if (r->vlen) memcpy(p + BC_REC_HEADER_SIZE + r->klen, value, r->vlen);
  return p;
}

static void roundtrip(const bc_rec *r, const void *key, const void *value) {
  unsigned char *p = make_record(r, key, value, 0);
  size_t n = (size_t)bc_rec_size(r->klen, r->vlen);
  /* Encoded in place over key and value already there: the same bytes. */
  unsigned char *q = malloc(n);
  assert_non_null(q);
  memset(q, 0xEE, BC_REC_HEADER_SIZE);
  memcpy(q + BC_REC_HEADER_SIZE, p + BC_REC_HEADER_SIZE, n - BC_REC_HEADER_SIZE);
  bc_rec_encode_in_place(q, r);
  assert_memory_equal(q, p, n);
  free(q);
  /* Byte positions of docs/FORMAT.md. */
  assert_int_equal(p[4], r->type);
  assert_int_equal(p[5], r->meta);
  assert_int_equal(p[6], 0);
  assert_int_equal(p[7], 0);
  assert_true(bc_get_u64(p + 8) == r->seq);
  assert_true(bc_get_u64(p + 16) == r->txn);
  assert_int_equal(bc_get_u32(p + 24), r->klen);
  assert_int_equal(bc_get_u32(p + 28), r->vlen);
  /* CRC of bytes 4 .. end of value. */
  assert_int_equal(bc_get_u32(p), (uint32_t)crc32(0, p + 4, (uInt)(n - 4)));

  bc_rec d;
  uint32_t crc;
  memset(&d, 0xAB, sizeof d);
  assert_int_equal(bc_rec_decode(p, &d, &crc), 0);
  assert_int_equal(d.type, r->type);
  assert_int_equal(d.meta, r->meta);
  assert_true(d.seq == r->seq);
  assert_true(d.txn == r->txn);
  assert_int_equal(d.klen, r->klen);
  assert_int_equal(d.vlen, r->vlen);
  assert_int_equal(crc, bc_get_u32(p));
  assert_true(bc_rec_crc_ok(p, &d, crc));
  free(p);
}

static void test_record_roundtrip(void **state) {
  (void)state;
  unsigned char val[300];
  tu_fill(val, sizeof val, 1, 1);
  bc_rec r = {BC_REC_PUT, 0x5A, 1, 0, 3, sizeof val};
  roundtrip(&r, "abc", val);
  r = (bc_rec){BC_REC_PUT, 0xFF, BC_MAX_SEQ, 0, 0, 0}; /* empty key and value */
  roundtrip(&r, "", NULL);
  r = (bc_rec){BC_REC_PUT, 0, 42, 7, 1, 1}; /* pending (txn) */
  roundtrip(&r, "k", "v");
  r = (bc_rec){BC_REC_TOMBSTONE, 0, 99, 0, 5, 0};
  roundtrip(&r, "hello", NULL);
  unsigned char n8[8];
  bc_put_u64(n8, 2);
  r = (bc_rec){BC_REC_COMMIT, 0, 100, 7, 0, 8};
  roundtrip(&r, NULL, n8);
  unsigned char s8[8];
  bc_put_u64(s8, 41);
  r = (bc_rec){BC_REC_ROLLBACK_TO, 0, 101, 7, 0, 8};
  roundtrip(&r, NULL, s8);
  /* The largest key. */
  unsigned char *big = malloc(BC_MAX_KEY_SIZE);
  assert_non_null(big);
  tu_fill(big, BC_MAX_KEY_SIZE, 2, 2);
  r = (bc_rec){BC_REC_PUT, 1, 5, 0, BC_MAX_KEY_SIZE, 4};
  roundtrip(&r, big, "four");
  free(big);
}

/* The record CRC is zlib's for every length across the switch between the
** two CRC libraries (256 bytes) and for every alignment of the value. */
static void test_record_crc_all_sizes(void **state) {
  (void)state;
  unsigned char *val = malloc(9000 + 16);
  assert_non_null(val);
  tu_fill(val, 9000 + 16, 3, 3);
  static const size_t lens[] = {0,   1,   7,    8,    63,   64,   180,  190,  220,
                                223, 224, 225,  226,  255,  256,  257,  300,  1000,
                                4063, 4064, 4065, 4096, 4097, 8191, 9000};
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (size_t al = 0; al < 16; al += 5) {
      bc_rec r = {BC_REC_PUT, 1, 7, 0, 3, (uint32_t)lens[li]};
      roundtrip(&r, "key", val + al);
    }
  free(val);
}

/* Flip any byte of a record (crc, header, key, value): the CRC check fails. */
static void test_record_crc_covers_everything(void **state) {
  (void)state;
  unsigned char key[7], val[23];
  tu_fill(key, sizeof key, 3, 0);
  tu_fill(val, sizeof val, 3, 1);
  bc_rec r = {BC_REC_PUT, 0x33, 0x123456789ull, 0, sizeof key, sizeof val};
  const size_t slack = 1u << 20;
  unsigned char *p = make_record(&r, key, val, slack);
  size_t n = (size_t)bc_rec_size(r.klen, r.vlen);
  static const unsigned char masks[] = {0x01, 0x10, 0x80, 0xFF};
  for (size_t i = 0; i < n; i++)
    for (size_t m = 0; m < sizeof masks; m++) {
      p[i] ^= masks[m];
      /* With the frame known (sizes of the original header). */
      if (bc_rec_crc_ok(p, &r, bc_get_u32(p)))
        fail_msg("record byte %zu ^ 0x%02x passes the CRC", i, masks[m]);
      /* As a reader sees it: decode, then check.  Either is refused. */
      bc_rec d;
      uint32_t crc;
      if (bc_rec_decode(p, &d, &crc) == 0 &&
          (uint64_t)d.klen + d.vlen <= r.klen + r.vlen + slack - BC_REC_HEADER_SIZE &&
          bc_rec_crc_ok(p, &d, crc))
        fail_msg("record byte %zu ^ 0x%02x decodes and passes the CRC", i, masks[m]);
      p[i] ^= masks[m];
    }
  bc_rec d;
  uint32_t crc;
  assert_int_equal(bc_rec_decode(p, &d, &crc), 0);
  assert_true(bc_rec_crc_ok(p, &d, crc));
  free(p);
}

/* Encode r's header as is (valid CRC) and return whether it decodes. */
static int decodes(bc_rec r) {
  unsigned char h[BC_REC_HEADER_SIZE];
  memset(h, 0, sizeof h);
  bc_put_u32(h, 0);
  h[4] = r.type;
  h[5] = r.meta;
  bc_put_u64(h + 8, r.seq);
  bc_put_u64(h + 16, r.txn);
  bc_put_u32(h + 24, r.klen);
  bc_put_u32(h + 28, r.vlen);
  bc_rec d;
  uint32_t crc;
  return bc_rec_decode(h, &d, &crc) == 0;
}

static void test_record_malformed(void **state) {
  (void)state;
  /* Plausible ones first, so the rejections below are about one field. */
  assert_true(decodes((bc_rec){BC_REC_PUT, 9, 1, 0, 3, 3}));
  assert_true(decodes((bc_rec){BC_REC_PUT, 9, BC_MAX_SEQ, 0, BC_MAX_KEY_SIZE, BC_MAX_VALUE_SIZE}));
  assert_true(decodes((bc_rec){BC_REC_TOMBSTONE, 0, 1, 0, 3, 0}));
  assert_true(decodes((bc_rec){BC_REC_COMMIT, 0, 1, 5, 0, 8}));
  assert_true(decodes((bc_rec){BC_REC_ROLLBACK_TO, 0, 1, 5, 0, 8}));

  /* Bad type. */
  assert_false(decodes((bc_rec){0, 0, 1, 0, 3, 3}));
  assert_false(decodes((bc_rec){5, 0, 1, 0, 3, 3}));
  assert_false(decodes((bc_rec){0xFF, 0, 1, 0, 3, 3}));
  /* Sizes over the limits. */
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, 1, 0, BC_MAX_KEY_SIZE + 1, 3}));
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, 1, 0, 3, BC_MAX_VALUE_SIZE + 1}));
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, 1, 0, UINT32_MAX, UINT32_MAX}));
  /* Sequence numbers: 0 and above 56 bits. */
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, 0, 0, 3, 3}));
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, BC_MAX_SEQ + 1, 0, 3, 3}));
  assert_false(decodes((bc_rec){BC_REC_PUT, 0, UINT64_MAX, 0, 3, 3}));
  /* Tombstone: no value, no meta. */
  assert_false(decodes((bc_rec){BC_REC_TOMBSTONE, 0, 1, 0, 3, 1}));
  assert_false(decodes((bc_rec){BC_REC_TOMBSTONE, 1, 1, 0, 3, 0}));
  /* COMMIT: a txn, no key, an 8-byte value (its record count). */
  assert_false(decodes((bc_rec){BC_REC_COMMIT, 0, 1, 0, 0, 8}));
  assert_false(decodes((bc_rec){BC_REC_COMMIT, 0, 1, 5, 1, 8}));
  assert_false(decodes((bc_rec){BC_REC_COMMIT, 0, 1, 5, 0, 0}));
  assert_false(decodes((bc_rec){BC_REC_COMMIT, 0, 1, 5, 0, 1}));
  /* ROLLBACK_TO: a txn, no key, an 8-byte value. */
  assert_false(decodes((bc_rec){BC_REC_ROLLBACK_TO, 0, 1, 0, 0, 8}));
  assert_false(decodes((bc_rec){BC_REC_ROLLBACK_TO, 0, 1, 5, 1, 8}));
  assert_false(decodes((bc_rec){BC_REC_ROLLBACK_TO, 0, 1, 5, 0, 7}));
  assert_false(decodes((bc_rec){BC_REC_ROLLBACK_TO, 0, 1, 5, 0, 0}));

  /* Reserved bytes 6..7 must be zero. */
  for (int i = 6; i < 8; i++) {
    unsigned char h[BC_REC_HEADER_SIZE];
    bc_rec r = {BC_REC_PUT, 0, 1, 0, 0, 0}, d;
    uint32_t crc;
    bc_rec_encode(h, &r, NULL, NULL);
    assert_int_equal(bc_rec_decode(h, &d, &crc), 0);
    h[i] = 1;
    assert_int_equal(bc_rec_decode(h, &d, &crc), -1);
  }
  /* All zeros (a hole in a file) and all ones are not records. */
  unsigned char z[BC_REC_HEADER_SIZE];
  bc_rec d;
  uint32_t crc;
  memset(z, 0, sizeof z);
  assert_int_equal(bc_rec_decode(z, &d, &crc), -1);
  memset(z, 0xFF, sizeof z);
  assert_int_equal(bc_rec_decode(z, &d, &crc), -1);
}

/* ----------------------------------------------------------------- hint */

static void test_hint_header(void **state) {
  (void)state;
  unsigned char h[BC_HINT_HEADER_SIZE];
  bc_hint_header_encode(h, 77, UINT64_C(0x1122334455));
  assert_memory_equal(h, "BCASKHNT", 8);
  assert_int_equal(bc_get_u32(h + 8), BC_HINT_VERSION);
  assert_int_equal(bc_get_u32(h + 12), 77);
  assert_true(bc_get_u64(h + 16) == UINT64_C(0x1122334455));
  assert_int_equal(bc_get_u32(h + 24), 0);
  assert_int_equal(bc_get_u32(h + 28), (uint32_t)crc32(0, h, 28));
  uint32_t version, id;
  uint64_t size;
  assert_int_equal(bc_hint_header_decode(h, &version, &id, &size), 0);
  assert_int_equal(version, BC_HINT_VERSION);
  assert_int_equal(id, 77);
  assert_true(size == UINT64_C(0x1122334455));
  for (int i = 0; i < (int)BC_HINT_HEADER_SIZE; i++) {
    h[i] ^= 0x04;
    if (bc_hint_header_decode(h, &version, &id, &size) == 0)
      fail_msg("hint header with byte %d flipped still decodes", i);
    h[i] ^= 0x04;
  }
  /* A data file header is not a hint header, and the reverse. */
  unsigned char fh[BC_FILE_HEADER_SIZE];
  uint32_t fl;
  bc_file_header_encode(fh, 77, 0);
  assert_int_equal(bc_hint_header_decode(fh, &version, &id, &size), -1);
  assert_int_equal(bc_file_header_decode(h, &version, &fl, &id), -1);
}

static void test_hint_entry(void **state) {
  (void)state;
  unsigned char e[BC_HINT_ENTRY_SIZE];
  bc_rec r = {BC_REC_PUT, 0xC3, UINT64_C(0x00ABCDEF01234567), UINT64_C(0x77), 65536,
              123456};
  bc_hint_entry_encode(e, &r, UINT64_C(0xFFFFFFFFFF));
  assert_int_equal(e[0], BC_REC_PUT);
  assert_int_equal(e[1], 0xC3);
  assert_int_equal(e[2], 0);
  assert_int_equal(e[3], 0);
  assert_int_equal(bc_get_u32(e + 4), 65536);
  assert_int_equal(bc_get_u32(e + 8), 123456);
  assert_int_equal(bc_get_u32(e + 12), 0);
  assert_true(bc_get_u64(e + 16) == r.seq);
  assert_true(bc_get_u64(e + 24) == r.txn);
  assert_true(bc_get_u64(e + 32) == UINT64_C(0xFFFFFFFFFF));
  bc_rec d;
  uint64_t off;
  assert_int_equal(bc_hint_entry_decode(e, &d, &off), 0);
  assert_int_equal(d.type, r.type);
  assert_int_equal(d.meta, r.meta);
  assert_true(d.seq == r.seq);
  assert_true(d.txn == r.txn);
  assert_int_equal(d.klen, r.klen);
  assert_int_equal(d.vlen, r.vlen);
  assert_true(off == UINT64_C(0xFFFFFFFFFF));

  for (int t = 1; t <= 4; t++) {
    r.type = (uint8_t)t;
    bc_hint_entry_encode(e, &r, 32);
    assert_int_equal(bc_hint_entry_decode(e, &d, &off), 0);
    assert_int_equal(d.type, t);
  }
  /* Malformed entries. */
  r = (bc_rec){BC_REC_PUT, 0, 1, 0, 1, 1};
  bc_rec bad[] = {
      {0, 0, 1, 0, 1, 1},
      {5, 0, 1, 0, 1, 1},
      {BC_REC_PUT, 0, 0, 0, 1, 1},
      {BC_REC_PUT, 0, BC_MAX_SEQ + 1, 0, 1, 1},
      {BC_REC_PUT, 0, 1, 0, BC_MAX_KEY_SIZE + 1, 1},
      {BC_REC_PUT, 0, 1, 0, 1, BC_MAX_VALUE_SIZE + 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    bc_hint_entry_encode(e, &bad[i], 32);
    if (bc_hint_entry_decode(e, &d, &off) == 0) fail_msg("bad hint entry %zu decodes", i);
  }
}

static void test_hint_trailer(void **state) {
  (void)state;
  unsigned char body[200], t[BC_HINT_TRAILER_SIZE];
  tu_fill(body, sizeof body, 4, 4);
  bc_hint_trailer_encode(t, 12345, body, sizeof body);
  assert_memory_equal(t, "BCHE", 4);
  assert_int_equal(bc_get_u32(t + 4), 12345);
  assert_int_equal(bc_get_u32(t + 8), 0);
  assert_int_equal(bc_get_u32(t + 12), (uint32_t)crc32(0, body, sizeof body));
  uint32_t count = 0;
  assert_int_equal(bc_hint_trailer_check(t, &count, body, sizeof body), 0);
  assert_int_equal(count, 12345);
  /* Every byte before the trailer is covered. */
  for (size_t i = 0; i < sizeof body; i++) {
    body[i] ^= 0x20;
    if (bc_hint_trailer_check(t, &count, body, sizeof body) == 0)
      fail_msg("hint body byte %zu flipped passes the trailer", i);
    body[i] ^= 0x20;
  }
  /* A shorter body (a truncated hint) fails too. */
  assert_int_equal(bc_hint_trailer_check(t, &count, body, sizeof body - 1), -1);
  /* Magic and CRC of the trailer itself. */
  for (int i = 0; i < 4; i++) {
    t[i] ^= 1;
    assert_int_equal(bc_hint_trailer_check(t, &count, body, sizeof body), -1);
    t[i] ^= 1;
  }
  for (int i = 12; i < 16; i++) {
    t[i] ^= 1;
    assert_int_equal(bc_hint_trailer_check(t, &count, body, sizeof body), -1);
    t[i] ^= 1;
  }
  assert_int_equal(bc_hint_trailer_check(t, &count, body, sizeof body), 0);
}

/* A hint file built with the hintbuf functions decodes entry by entry. */
static void test_hintbuf(void **state) {
  (void)state;
  bc_hintbuf h;
  assert_int_equal(bc_hintbuf_init(&h, 9), 0);
  uint64_t off = BC_FILE_HEADER_SIZE;
  char key[32];
  for (size_t i = 0; i < 500; i++) {
    size_t kl = tu_key(key, i);
    bc_rec r = {i % 7 == 0 ? BC_REC_TOMBSTONE : BC_REC_PUT, 0, i + 1, 0, (uint32_t)kl,
                i % 7 == 0 ? 0 : (uint32_t)i};
    assert_int_equal(bc_hintbuf_add(&h, &r, off, key, 0), 0);
    off += bc_rec_size(r.klen, r.vlen);
  }
  assert_int_equal(bc_hintbuf_finish(&h, 9, off), 0);
  assert_int_equal(h.count, 500);
  uint32_t version, id, count;
  uint64_t size;
  assert_int_equal(bc_hint_header_decode(h.data, &version, &id, &size), 0);
  assert_int_equal(id, 9);
  assert_true(size == off);
  size_t body = h.len - BC_HINT_TRAILER_SIZE;
  assert_int_equal(bc_hint_trailer_check(h.data + body, &count, h.data, body), 0);
  assert_int_equal(count, 500);
  size_t at = BC_HINT_HEADER_SIZE;
  uint64_t expect_off = BC_FILE_HEADER_SIZE;
  for (size_t i = 0; i < 500; i++) {
    bc_rec d;
    uint64_t o;
    assert_int_equal(bc_hint_entry_decode(h.data + at, &d, &o), 0);
    size_t kl = tu_key(key, i);
    assert_int_equal(d.klen, kl);
    assert_memory_equal(h.data + at + BC_HINT_ENTRY_SIZE, key, kl);
    assert_true(d.seq == i + 1);
    assert_true(o == expect_off);
    expect_off += bc_rec_size(d.klen, d.vlen);
    at += BC_HINT_ENTRY_SIZE + kl;
  }
  assert_int_equal(at, body);
  bc_hintbuf_free(&h);
}

/* ------------------------------------------------------- MERGE manifest */

static void manifest_roundtrip(uint32_t ni, uint32_t no) {
  bc_manifest m = {0};
  m.inputs = malloc((ni + 1) * sizeof *m.inputs);
  m.outputs = malloc((no + 1) * sizeof *m.outputs);
  assert_true(m.inputs && m.outputs);
  m.n_inputs = ni;
  m.n_outputs = no;
  for (uint32_t i = 0; i < ni; i++) m.inputs[i] = 3 * i + 1;
  for (uint32_t i = 0; i < no; i++) m.outputs[i] = 1000000 + i;
  size_t len = 0;
  unsigned char *p = bc_manifest_encode(&m, &len);
  assert_non_null(p);
  assert_int_equal(len, 24 + 4 * ((size_t)ni + no));
  assert_memory_equal(p, "BCASKMRG", 8);
  assert_int_equal(bc_get_u32(p + 8), BC_MANIFEST_VERSION);
  assert_int_equal(bc_get_u32(p + 12), ni);
  assert_int_equal(bc_get_u32(p + 16), no);
  if (ni) assert_int_equal(bc_get_u32(p + 20), m.inputs[0]);
  if (no) assert_int_equal(bc_get_u32(p + 20 + 4 * ni), m.outputs[0]);
  assert_int_equal(bc_get_u32(p + len - 4), (uint32_t)crc32(0, p, (uInt)(len - 4)));

  bc_manifest d;
  assert_int_equal(bc_manifest_decode(p, len, &d), 0);
  assert_int_equal(d.n_inputs, ni);
  assert_int_equal(d.n_outputs, no);
  for (uint32_t i = 0; i < ni; i++) assert_int_equal(d.inputs[i], m.inputs[i]);
  for (uint32_t i = 0; i < no; i++) assert_int_equal(d.outputs[i], m.outputs[i]);
  bc_manifest_free(&d);

  /* Any flipped byte, any truncation, any extra byte: refused. */
  for (size_t i = 0; i < len; i++) {
    p[i] ^= 0x08;
    if (bc_manifest_decode(p, len, &d) != -1)
      fail_msg("manifest (%u,%u) with byte %zu flipped decodes", ni, no, i);
    p[i] ^= 0x08;
  }
  for (size_t l = 0; l < len; l++)
    if (bc_manifest_decode(p, l, &d) != -1)
      fail_msg("manifest (%u,%u) cut to %zu bytes decodes", ni, no, l);
  unsigned char *q = malloc(len + 4);
  assert_non_null(q);
  memcpy(q, p, len);
  memset(q + len, 0, 4);
  assert_int_equal(bc_manifest_decode(q, len + 4, &d), -1);
  assert_int_equal(bc_manifest_decode(q, len + 1, &d), -1);
  free(q);
  free(p);
  bc_manifest_free(&m);
}

static void test_manifest(void **state) {
  (void)state;
  manifest_roundtrip(0, 0);
  manifest_roundtrip(1, 0);
  manifest_roundtrip(3, 2);
  manifest_roundtrip(200, 17);

  /* Counts that claim more than the bytes hold (or overflow) are refused
  ** before any allocation. */
  unsigned char p[24];
  memcpy(p, "BCASKMRG", 8);
  bc_put_u32(p + 8, BC_MANIFEST_VERSION);
  bc_put_u32(p + 12, UINT32_MAX);
  bc_put_u32(p + 16, 2);
  bc_put_u32(p + 20, (uint32_t)crc32(0, p, 20));
  bc_manifest d;
  assert_int_equal(bc_manifest_decode(p, sizeof p, &d), -1);
  /* A newer version, even with a valid CRC, is not read. */
  bc_put_u32(p + 8, BC_MANIFEST_VERSION + 1);
  bc_put_u32(p + 12, 0);
  bc_put_u32(p + 16, 0);
  bc_put_u32(p + 20, (uint32_t)crc32(0, p, 20));
  assert_int_equal(bc_manifest_decode(p, sizeof p, &d), -1);
  bc_put_u32(p + 8, BC_MANIFEST_VERSION);
  bc_put_u32(p + 20, (uint32_t)crc32(0, p, 20));
  assert_int_equal(bc_manifest_decode(p, sizeof p, &d), 0);
  assert_int_equal(d.n_inputs, 0);
  bc_manifest_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_integers_little_endian),
      cmocka_unit_test(test_file_header),
      cmocka_unit_test(test_record_roundtrip),
      cmocka_unit_test(test_record_crc_all_sizes),
      cmocka_unit_test(test_record_crc_covers_everything),
      cmocka_unit_test(test_record_malformed),
      cmocka_unit_test(test_hint_header),
      cmocka_unit_test(test_hint_entry),
      cmocka_unit_test(test_hint_trailer),
      cmocka_unit_test(test_hintbuf),
      cmocka_unit_test(test_manifest),
  };
  return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
