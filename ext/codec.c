/*
** codec.c -- SQLite values <-> the engine's key bytes, value bytes and meta.
**
** The contract (docs/DESIGN.md section 5.1, "Schema"): keys and values keep
** their
** storage class; keys that SQLite compares equal are one key (1 and 1.0),
** keys of different classes are different keys (1 and '1'), as in a native
** column with no affinity.  So a key's bytes carry its identity and the meta
** byte carries what identity drops:
**
**   REAL r < -2^63            -> 0x0F, be64(ord(r))                    meta REAL
**   INTEGER i                 -> 0x10, be64(i ^ 2^63)                  meta 0
**   REAL r, r integral and    -> 0x10, be64((int64)r ^ 2^63)           meta REAL
**     within int64 range         (exactly the bytes of the INTEGER (int64)r)
**   REAL r, not integral      -> 0x10, be64(floor(r) ^ 2^63), be64(ord(r))
**                                                                      meta REAL
**   REAL r >= 2^63            -> 0x11, be64(ord(r))                    meta REAL
**   TEXT t                    -> 0x30, UTF-8 bytes of t
**   BLOB b                    -> 0x40, bytes of b
**
** where ord(r) is the IEEE bits of r made order-preserving (negative: all
** bits flipped; positive: the sign bit flipped).
**
** Byte order (memcmp, then the shorter first) is then exactly SQLite's order
** for the column, which the engine's ordered index walks (engine/keytree.c):
** numbers before TEXT before BLOB; TEXT by BINARY collation (memcmp of UTF-8,
** then length); BLOB by memcmp; and numbers numerically, INTEGER and REAL
** mixed, exactly as sqlite3IntFloatCompare: a non-integral r sorts after the
** integer floor(r) (whose 9 bytes are its prefix) and before floor(r) + 1,
** and reals beyond the int64 range sort beyond every integer.  A non-integral
** REAL is always within (-2^53, 2^53), so floor(r) is exact.
**
** "Integral" is tested exactly ((double)(int64)r == r), which is how SQLite
** itself decides that an INTEGER and a REAL are equal (sqlite3IntFloatCompare
** is exact), so 2^53+1 and 9007199254740992.0 stay two keys.  -0.0 is the key
** 0 (it compares equal to 0), with BCX_KEY_NEGZERO in meta so that it reads
** back as -0.0, as a native table returns it.  NaN never reaches us: SQLite
** turns it into NULL.
**
** Values: NULL -> 0 bytes; INTEGER -> 8 bytes little-endian; REAL -> the 8
** bytes of the IEEE double, little-endian; TEXT -> UTF-8 bytes; BLOB -> bytes.
** The class is in bits 0-2 of meta.
*/
#include "bitcask_ext.h"
SQLITE_EXTENSION_INIT3

#include <math.h>
#include <string.h>

static void put_be64(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static uint64_t get_be64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* 1 and *out set if r is exactly an int64. */
static int real_is_int64(double r, int64_t *out) {
  /* The range test also rejects NaN.  2^63 itself is out of range. */
  if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) return 0;
  int64_t i = (int64_t)r;
  if ((double)i != r) return 0;
  *out = i;
  return 1;
}

static int key_alloc(bcx_key *k, size_t len) {
  k->heap = NULL;
  if (len <= sizeof k->inline_buf) {
    k->data = k->inline_buf;
    return SQLITE_OK;
  }
  k->heap = sqlite3_malloc64(len);
  if (!k->heap) return SQLITE_NOMEM;
  k->data = k->heap;
  return SQLITE_OK;
}

static int key_encode(sqlite3_value *v, bcx_key *out, size_t max_payload) {
  unsigned char *p;
  int64_t i;
  int rc;
  out->heap = NULL;
  out->key_meta = 0;
  switch (sqlite3_value_type(v)) {
  case SQLITE_NULL:
    return SQLITE_MISMATCH;
  case SQLITE_INTEGER:
    i = sqlite3_value_int64(v);
    goto encode_int;
  case SQLITE_FLOAT: {
    double r = sqlite3_value_double(v);
    out->key_meta = BCX_KEY_REAL;
    if (real_is_int64(r, &i)) {
      if (i == 0 && signbit(r)) out->key_meta |= BCX_KEY_NEGZERO;
      goto encode_int;
    }
    uint64_t bits;
    memcpy(&bits, &r, 8);
    /* Negative doubles: flip every bit; positive: flip the sign bit. */
    bits = (bits >> 63) ? ~bits : (bits ^ 0x8000000000000000ull);
    out->data = out->inline_buf;
    if (r < -9223372036854775808.0 || r >= 9223372036854775808.0) {
      out->inline_buf[0] = r < 0 ? BCX_TAG_REAL_LOW : BCX_TAG_REAL_HIGH;
      put_be64(out->inline_buf + 1, bits);
      out->len = 9;
      return SQLITE_OK;
    }
    out->inline_buf[0] = BCX_TAG_INT;
    put_be64(out->inline_buf + 1, (uint64_t)(int64_t)floor(r) ^ 0x8000000000000000ull);
    put_be64(out->inline_buf + 9, bits);
    out->len = 17;
    return SQLITE_OK;
  }
  case SQLITE_TEXT:
  case SQLITE_BLOB: {
    int is_text = sqlite3_value_type(v) == SQLITE_TEXT;
    int n = sqlite3_value_bytes(v);
    if ((size_t)n > max_payload) return SQLITE_TOOBIG;
    const void *src = is_text ? (const void *)sqlite3_value_text(v)
                              : sqlite3_value_blob(v);
    n = sqlite3_value_bytes(v);
    if (!src && n > 0) return SQLITE_NOMEM;
    rc = key_alloc(out, (size_t)n + 1);
    if (rc != SQLITE_OK) return rc;
    p = (unsigned char *)out->data;
    p[0] = is_text ? BCX_TAG_TEXT : BCX_TAG_BLOB;
    if (n > 0) memcpy(p + 1, src, (size_t)n);
    out->len = (size_t)n + 1;
    return SQLITE_OK;
  }
  default:
    return SQLITE_MISMATCH;
  }
encode_int:
  out->inline_buf[0] = BCX_TAG_INT;
  put_be64(out->inline_buf + 1, (uint64_t)i ^ 0x8000000000000000ull);
  out->data = out->inline_buf;
  out->len = 9;
  return SQLITE_OK;
}

int bcx_key_encode(sqlite3_value *v, bcx_key *out) {
  return key_encode(v, out, BCX_MAX_KEY_PAYLOAD);
}

int bcx_key_encode_bound(sqlite3_value *v, bcx_key *out) {
  return key_encode(v, out, (size_t)0x7fffffff);
}

void bcx_key_rebase(bcx_key *k) {
  if (!k->heap) k->data = k->inline_buf;
}

void bcx_key_clear(bcx_key *k) {
  sqlite3_free(k->heap);
  k->heap = NULL;
  k->data = NULL;
  k->len = 0;
}

/* The double of 8 order-preserving bytes (ord(r) above). */
static double key_real(const unsigned char *p) {
  uint64_t bits = get_be64(p);
  bits = (bits >> 63) ? (bits ^ 0x8000000000000000ull) : ~bits;
  double r;
  memcpy(&r, &bits, 8);
  return r;
}

int bcx_key_result(sqlite3_context *ctx, const void *key, size_t klen,
                   uint8_t meta) {
  const unsigned char *p = key;
  if (klen == 0) return SQLITE_CORRUPT;
  switch (p[0]) {
  case BCX_TAG_INT: {
    if (klen == 17) {
      sqlite3_result_double(ctx, key_real(p + 9));
      return SQLITE_OK;
    }
    if (klen != 9) return SQLITE_CORRUPT;
    int64_t i = (int64_t)(get_be64(p + 1) ^ 0x8000000000000000ull);
    if (meta & BCX_KEY_REAL)
      sqlite3_result_double(ctx, i == 0 && (meta & BCX_KEY_NEGZERO) ? -0.0 : (double)i);
    else
      sqlite3_result_int64(ctx, i);
    return SQLITE_OK;
  }
  case BCX_TAG_REAL_LOW:
  case BCX_TAG_REAL_HIGH:
    if (klen != 9) return SQLITE_CORRUPT;
    sqlite3_result_double(ctx, key_real(p + 1));
    return SQLITE_OK;
  case BCX_TAG_TEXT:
    sqlite3_result_text64(ctx, (const char *)p + 1, klen - 1,
                          SQLITE_TRANSIENT, SQLITE_UTF8);
    return SQLITE_OK;
  case BCX_TAG_BLOB:
    sqlite3_result_blob64(ctx, p + 1, klen - 1, SQLITE_TRANSIENT);
    return SQLITE_OK;
  default:
    return SQLITE_CORRUPT;
  }
}

int bcx_value_encode(sqlite3_value *v, bcx_value *out) {
  switch (sqlite3_value_type(v)) {
  case SQLITE_NULL:
    out->data = NULL;
    out->len = 0;
    out->value_meta = BCX_NULL;
    return SQLITE_OK;
  case SQLITE_INTEGER:
    put_le64(out->num, (uint64_t)sqlite3_value_int64(v));
    out->data = out->num;
    out->len = 8;
    out->value_meta = BCX_INTEGER;
    return SQLITE_OK;
  case SQLITE_FLOAT: {
    double r = sqlite3_value_double(v);
    uint64_t bits;
    memcpy(&bits, &r, 8);
    put_le64(out->num, bits);
    out->data = out->num;
    out->len = 8;
    out->value_meta = BCX_REAL;
    return SQLITE_OK;
  }
  default: {
    int is_text = sqlite3_value_type(v) == SQLITE_TEXT;
    /* sqlite3_value_bytes of a zeroblob does not materialise it, so an
    ** oversize zeroblob(N) is refused without allocating N bytes. */
    if ((uint64_t)sqlite3_value_bytes(v) > BC_MAX_VALUE_SIZE)
      return SQLITE_TOOBIG;
    out->data = is_text ? (const void *)sqlite3_value_text(v)
                        : sqlite3_value_blob(v);
    out->len = (size_t)sqlite3_value_bytes(v);
    if (!out->data && out->len > 0) return SQLITE_NOMEM;
    out->value_meta = is_text ? BCX_TEXT : BCX_BLOB;
    return SQLITE_OK;
  }
  }
}

int bcx_value_result(sqlite3_context *ctx, const void *data, size_t len,
                     uint8_t meta) {
  switch (meta & BCX_VALUE_MASK) {
  case BCX_NULL:
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  case BCX_INTEGER:
    if (len != 8) return SQLITE_CORRUPT;
    sqlite3_result_int64(ctx, (sqlite3_int64)get_le64(data));
    return SQLITE_OK;
  case BCX_REAL: {
    if (len != 8) return SQLITE_CORRUPT;
    uint64_t bits = get_le64(data);
    double r;
    memcpy(&r, &bits, 8);
    sqlite3_result_double(ctx, r);
    return SQLITE_OK;
  }
  case BCX_TEXT:
    sqlite3_result_text64(ctx, data ? data : "", len, SQLITE_TRANSIENT,
                          SQLITE_UTF8);
    return SQLITE_OK;
  case BCX_BLOB:
    sqlite3_result_blob64(ctx, data ? data : "", len, SQLITE_TRANSIENT);
    return SQLITE_OK;
  default:
    return SQLITE_CORRUPT;
  }
}
