/*
** fuzz_open.c -- libFuzzer target: arbitrary bytes as the files of a store
** directory (data and hint files, the MERGE manifest, .merging and .tmp
** leftovers, the BITCASK marker), fed to the engine's open (recovery) and
** read paths, then to a round of writes, a transaction and a merge.
**
** Any status is fine.  Bugs are crashes and sanitizer reports, leaks
** (memory: LSan; descriptors: /proc/self/fd is counted around every input),
** hangs (libFuzzer's -timeout, replay.c's FUZZ_REPLAY_TIMEOUT), and a failed
** check() -- invariants that hold whatever the files said:
**   - iteration, lookup, get, count and stats agree; a put that returned
**     BC_OK reads back; after a commit the store sees what the transaction
**     saw, after a rollback what it saw before;
**   - a follower (a read-only store catching up with bc_refresh) whose
**     refresh worked sees what a fresh read-only open sees -- unless the
**     input holds two versions of one file (has_twins);
**   - a store whose writer closed without error opens again, holding what
**     it held at the close -- unless the input put a directory where a file
**     goes (the engine's renames and unlinks of it then fail for good).
**
** Built two ways (Makefile): `make fuzz` links it with libFuzzer and runs
** it; build/fuzz_replay (replay.c) links it with a plain driver that runs
** the corpus in test/fuzz/corpus, and generates the seed part of that corpus
** (replay.c --make-seeds, which packs real stores with fuzz_pack_dir below).
**
** ------------------------------------------------------------------------
** The input: an archive of files
**
**   input    := preamble (SEP chunk)*
**   SEP      := the 4 bytes FZ_SEP; chunks are split at every occurrence,
**               so inserting or deleting bytes inside a file keeps the rest
**               of the archive intact
**   preamble := options; bytes missing at the end count as 0
**     p[0] bits 0-1  sync mode: 0,1 off  2 normal  3 full
**          bit 2     max_file_size 4096 (else the default 64 MiB)
**          bit 3     no BITCASK marker unless a chunk gives one (else a valid
**                    marker is written when no chunk gives one)
**          bit 4     open the writer with create = 1
**          bit 5     skip the read-only open
**          bit 6     skip the writer open
**          bit 7     the transaction nests two savepoints
**     p[1] bit 0 skip the new puts   bit 1 skip the overwrite of a key read
**          bit 2 skip the deletes    bit 3 skip the transaction
**          bit 4 skip the merge      bit 5 skip the reopens after the round
**          bits 6-7 how the transaction ends: commit, prepare + commit,
**                   rollback, prepare + rollback (the abort marker)
**     p[2] value size of the puts / 64
**     p[3] bits 0-2 puts in the transaction; bits 3-6 the meta byte; bit 7
**          the transaction releases its first savepoint (else rolls back)
**     p[4..7] (u32) the read-only side: bit 0 set, a plain read-only open;
**          clear, a follower: opened when only part of the files is there,
**          then bc_refresh after the rest arrived; which file comes when is
**          drawn from this u32 (see stage_of)
**   chunk    := kind idsel aux content...    (one file; at most FZ_MAX_FILES)
**     kind bits 0-3: what file (FK_* below, modulo FK_COUNT)
**          bit 4 SYNTH  prepend a valid header (data, hint), or build the
**                       file from the content (marker, manifest)
**          bit 5 FIX    fix the checksums: every record CRC of a data file
**                       (all but record number aux-1 when aux & 0x7f != 0),
**                       header CRCs, a hint's entry offsets (unless aux bit
**                       7), count and trailer, the manifest's CRC
**          bit 6 data: merged flag in the synthesized header;
**                hint: data_size 0 instead of its data file's size
**          bit 7 hint with FIX: count one entry too many; data: the first
**                4 bytes of the content make the file larger (see grow)
**     idsel bits 0-4 file id - 1 (ids 1..32); bit 5: an odd id instead,
**                    FZ_ODD_IDS[bits 0-2]; bits 6-7 the synthesized header:
**                    0 right, 1 file id + 1, 2 a newer version (data:
**                    BC_FORMAT_VERSION + 1, hint: BC_HINT_VERSION + 1;
**                    marker: BC_FORMAT_VERSION + 1, else format 1), 3
**                    version 0
**     aux   see FIX; marker: bit 0 created-dir
**   Manifest with SYNTH: content[0] = number of inputs, then one byte per
**   id (0..255), inputs first, outputs after.
**
** Everything is written twice: into <tmp>/ro, opened read-only (or
** followed, see p[4]), and into <tmp>/rw, opened as the writer, with a
** follower beside it that refreshes after each step of the writer.  <tmp>
** is made once per process by mkdtemp (under $BC_FUZZ_TMPDIR, else
** /dev/shm, else $TMPDIR or /tmp) and removed at exit (and, if the process
** died, by the next one: sweep_stale); the two directories are emptied
** after every input.  -DFZ_DEBUG prints what each open gave and keeps the
** directories of a failed check in /tmp/fzfail.
*/
#include "bitcask.h"
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_pack_dir(const char *dir, const unsigned char pre[8], int style,
                  unsigned char **out, size_t *outlen);

/* UBSan's reports are recoverable in the libFuzzer build (no
** -fno-sanitize-recover there): make them fatal so they count as crashes. */
__attribute__((visibility("default"))) const char *__ubsan_default_options(void);
__attribute__((visibility("default"))) const char *__ubsan_default_options(void) {
  return "halt_on_error=1:print_stacktrace=1";
}

#define FZ_SEP "\xfe\xed" "FZ"
#define FZ_SEP_LEN 4
#define FZ_MAX_FILES 16

enum {
  FK_MARKER = 0, FK_DATA, FK_HINT, FK_DATA_MERGING, FK_HINT_MERGING,
  FK_HINT_TMP, FK_MERGE, FK_MERGE_TMP, FK_LOCK, FK_FOREIGN, FK_SUBDIR,
  FK_COUNT
};
#define FZ_SYNTH 0x10u
#define FZ_FIX 0x20u
#define FZ_BIT6 0x40u
#define FZ_BIT7 0x80u

static const uint32_t FZ_ODD_IDS[8] = {UINT32_MAX,     UINT32_MAX - 1,
                                       UINT32_MAX - 2, 1000000000u,
                                       0u,             99u,
                                       4096u,          65536u};

/* -DFZ_DEBUG: say what each open gave (to check a seed does what it should). */
#ifdef FZ_DEBUG
#define debugf(...) fprintf(stderr, __VA_ARGS__)
#else
#define debugf(...) ((void)0)
#endif

/* Invariants that hold whatever the files said: a violation is a bug. */
static void check_failed(const char *file, int line, const char *what);
#define check(cond)                                                         \
  do {                                                                      \
    if (!(cond)) check_failed(__FILE__, __LINE__, #cond);                   \
  } while (0)

/* ------------------------------------------------------- the temp dirs */

static char g_base[256];  /* the per-process temp dir; "" until made */

static void path_in(char *out, const char *dir, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s/%s", g_base, dir, name);
}

/* Remove what is in directory `path` (files, and the empty subdirectories
** FK_SUBDIR makes). */
static void empty_path(const char *path) {
  DIR *d = opendir(path);
  if (!d) return;
  int dfd = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dfd, de->d_name, 0) != 0) (void)unlinkat(dfd, de->d_name, AT_REMOVEDIR);
  }
  closedir(d);
}

/* Remove a temp dir <base> with its ro and rw (the layout make_base makes). */
static void remove_tree(const char *base) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/ro", base);
  empty_path(p);
  rmdir(p);
  snprintf(p, sizeof p, "%s/rw", base);
  empty_path(p);
  rmdir(p);
  rmdir(base);
}

/* Empty <base>/<dir>. */
static void clean_dir(const char *dir) {
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", g_base, dir);
  empty_path(p);
}

static void remove_base(void) {
  if (!g_base[0]) return;
  remove_tree(g_base);
  g_base[0] = 0;
}

/* The temp dirs of fuzzing processes that died without their atexit (a
** crash, a timeout, an interrupt): bcfuzz-<pid>-XXXXXX whose pid is gone. */
static void sweep_stale(const char *parent) {
  DIR *d = opendir(parent);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    long pid;
    int used = 0;
    if (sscanf(de->d_name, "bcfuzz-%ld-%n", &pid, &used) != 1 || used == 0 || pid <= 0)
      continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", parent, de->d_name);
    remove_tree(p);
  }
  closedir(d);
}

static int usable_dir(const char *d) {
  struct stat sb;
  return d && *d && strlen(d) < 200 && stat(d, &sb) == 0 && S_ISDIR(sb.st_mode) &&
         access(d, W_OK | X_OK) == 0;
}

static int make_base(void) {
  if (g_base[0]) return 0;
  const char *cands[] = {getenv("BC_FUZZ_TMPDIR"), "/dev/shm", getenv("TMPDIR"),
                         "/tmp"};
  for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
    if (!usable_dir(cands[i])) continue;
    sweep_stale(cands[i]);
    snprintf(g_base, sizeof g_base, "%s/bcfuzz-%ld-XXXXXX", cands[i], (long)getpid());
    if (!mkdtemp(g_base)) continue;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/ro", g_base);
    int ok = mkdir(p, 0755) == 0;
    snprintf(p, sizeof p, "%s/rw", g_base);
    ok = ok && mkdir(p, 0755) == 0;
    if (!ok) {
      remove_base();
      continue;
    }
    atexit(remove_base);
    return 0;
  }
  g_base[0] = 0;
  return -1;
}

static void check_failed(const char *file, int line, const char *what) {
  fprintf(stderr, "fuzz_open: check failed at %s:%d: %s\n", file, line, what);
#ifdef FZ_DEBUG
  /* Keep the store directories for a look. */
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/fzfail && cp -r %s /tmp/fzfail", g_base);
  if (system(cmd) == 0) fprintf(stderr, "fuzz_open: directories kept in /tmp/fzfail\n");
#endif
  abort();
}

/* Open descriptors of the process (for the leak check). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int write_file(const char *path, const unsigned char *p, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    n -= (size_t)w;
  }
  close(fd);
  return n == 0 ? 0 : -1;
}

/* ------------------------------------------------ building the files */

typedef struct fz_file {
  char name[40];
  int kind;          /* FK_* */
  int is_dir;
  unsigned char *buf; /* owned */
  size_t len;
} fz_file;

typedef struct fz_chunk {
  uint8_t kind, idsel, aux;
  const uint8_t *body;
  size_t blen;
} fz_chunk;

static uint32_t crc_of(const unsigned char *p, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
    c = crc32(c, p, k);
    p += k;
    n -= k;
  }
  return (uint32_t)c;
}

static uint32_t chunk_id(uint8_t idsel) {
  if (idsel & 0x20u) return FZ_ODD_IDS[idsel & 7u];
  return (uint32_t)(idsel & 0x1fu) + 1u;
}

static const char *kind_suffix(int kind) {
  switch (kind) {
    case FK_DATA: return ".data";
    case FK_HINT: return ".hint";
    case FK_DATA_MERGING: return ".data.merging";
    case FK_HINT_MERGING: return ".hint.merging";
    case FK_HINT_TMP: return ".hint.tmp";
    default: return "";
  }
}

static void kind_name(char *out, size_t n, int kind, uint8_t idsel) {
  switch (kind) {
    case FK_MARKER: snprintf(out, n, "BITCASK"); return;
    case FK_MERGE: snprintf(out, n, "MERGE"); return;
    case FK_MERGE_TMP: snprintf(out, n, "MERGE.tmp"); return;
    case FK_LOCK: snprintf(out, n, "LOCK"); return;
    case FK_FOREIGN: {
      static const char *const names[8] = {
          "notes.txt", "0000000001.data.bak", "00000000001.data", "MERGE.old",
          "BITCASK.tmp", "0000000001.hint.tmp.x", "4294967296.data", "LOCK.old"};
      snprintf(out, n, "%s", names[idsel & 7u]);
      return;
    }
    case FK_SUBDIR:
      /* A directory where a data or hint file is expected. */
      snprintf(out, n, "%010u%s", chunk_id(idsel),
               kind_suffix((idsel & 0x80u) ? FK_HINT : FK_DATA));
      return;
    default:
      snprintf(out, n, "%010u%s", chunk_id(idsel), kind_suffix(kind));
  }
}

/* A 32-byte file or hint header per idsel bits 6-7, CRC recomputed. */
static void patch_header(unsigned char *h, uint8_t idsel, int hint) {
  unsigned variant = (idsel >> 6) & 3u;
  if (variant == 1) bc_put_u32(h + (hint ? 12 : 16), bc_get_u32(h + (hint ? 12 : 16)) + 1u);
  if (variant == 2) bc_put_u32(h + 8, hint ? BC_HINT_VERSION + 1 : BC_FORMAT_VERSION + 1);
  if (variant == 3) bc_put_u32(h + 8, 0);
  bc_put_u32(h + 28, crc_of(h, 28));
}

/* Concatenate a header of n bytes and the body into a new buffer. */
static int join(fz_file *f, const unsigned char *head, size_t hn,
                const unsigned char *body, size_t bn, size_t extra) {
  f->len = hn + bn;
  f->buf = malloc(f->len + extra + 1);
  if (!f->buf) return -1;
  if (hn) memcpy(f->buf, head, hn);
  if (bn) memcpy(f->buf + hn, body, bn);
  return 0;
}

/* A large file from a small input: body[0] is a size in units of 64 KiB
** (at most FZ_MAX_GROW), body[1..2] (u16) an offset into the rest of the
** body, body[3] a pattern length L; the rest of the body gets
** that many bytes inserted at that offset, repeating the L bytes found
** there (zeros when L is 0 or the rest is too short).  NULL on NOMEM. */
#define FZ_MAX_GROW 20u /* 1.25 MiB: past the scan window of 1 MiB */
static unsigned char *grow(const uint8_t *body, size_t blen, size_t *outlen) {
  size_t units = body[0] > FZ_MAX_GROW ? FZ_MAX_GROW : body[0];
  size_t fill = units * 65536u;
  size_t at = (size_t)body[1] | (size_t)body[2] << 8;
  size_t plen = body[3];
  const uint8_t *rest = body + 4;
  size_t rlen = blen - 4;
  if (at > rlen) at = rlen;
  if (plen > rlen - at) plen = 0;
  unsigned char *out = malloc(rlen + fill + 1);
  if (!out) return NULL;
  memcpy(out, rest, at);
  if (plen == 0) {
    memset(out + at, 0, fill);
  } else {
    for (size_t i = 0; i < fill; i++) out[at + i] = rest[at + i % plen];
  }
  memcpy(out + at + fill, rest + at, rlen - at);
  *outlen = rlen + fill;
  return out;
}

/* Data file: records from offset 32; FIX recomputes the CRC of each record
** that frames (klen/vlen in range and inside the file). */
static void fix_data(fz_file *f, uint8_t aux, int fix_header) {
  if (f->len < BC_FILE_HEADER_SIZE) return;
  if (fix_header) bc_put_u32(f->buf + 28, crc_of(f->buf, 28));
  unsigned keep = aux & 0x7fu; /* record number keep-1 keeps its CRC */
  size_t off = BC_FILE_HEADER_SIZE;
  for (unsigned i = 1; f->len - off >= BC_REC_HEADER_SIZE; i++) {
    unsigned char *p = f->buf + off;
    uint32_t klen = bc_get_u32(p + 24), vlen = bc_get_u32(p + 28);
    if (klen > BC_MAX_KEY_SIZE || vlen > BC_MAX_VALUE_SIZE) break;
    uint64_t sz = bc_rec_size(klen, vlen);
    if (sz > f->len - off) break;
    if (i != keep) bc_put_u32(p, crc_of(p + 4, (size_t)sz - 4));
    off += (size_t)sz;
  }
}

/* Hint file: entries from offset 32 (the header is already there); FIX
** rewrites offsets to tile the data file, drops what does not frame, and
** appends the trailer.  f->buf has room for BC_HINT_TRAILER_SIZE more. */
static void fix_hint(fz_file *f, uint8_t kind, uint8_t aux, int fix_header) {
  if (f->len < BC_HINT_HEADER_SIZE) return;
  if (fix_header) bc_put_u32(f->buf + 28, crc_of(f->buf, 28));
  size_t at = BC_HINT_HEADER_SIZE;
  uint64_t prev_end = BC_FILE_HEADER_SIZE;
  uint32_t count = 0;
  while (f->len - at >= BC_HINT_ENTRY_SIZE) {
    unsigned char *p = f->buf + at;
    uint32_t klen = bc_get_u32(p + 4), vlen = bc_get_u32(p + 8);
    size_t extra = (p[0] == BC_REC_COMMIT || p[0] == BC_REC_ROLLBACK_TO) ? 8 : klen;
    if (extra > f->len - at - BC_HINT_ENTRY_SIZE) break;
    if (!(aux & 0x80u)) bc_put_u64(p + 32, prev_end);
    prev_end += bc_rec_size(klen, vlen);
    count++;
    at += BC_HINT_ENTRY_SIZE + extra;
  }
  f->len = at;
  if (kind & FZ_BIT7) count++;
  unsigned char *t = f->buf + f->len;
  memcpy(t, "BCHE", 4);
  bc_put_u32(t + 4, count);
  bc_put_u32(t + 8, 0);
  bc_put_u32(t + 12, crc_of(f->buf, f->len));
  f->len += BC_HINT_TRAILER_SIZE;
}

static const fz_file *find_file(const fz_file *fs, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!fs[i].is_dir && strcmp(fs[i].name, name) == 0) return &fs[i];
  return NULL;
}

/* Build file f from chunk c.  Data files are built before hints (a hint's
** synthesized header takes its data file's size from fs). */
static int build_file(fz_file *fs, size_t nfs, fz_file *f, const fz_chunk *c) {
  int kind = f->kind;
  uint32_t id = chunk_id(c->idsel);
  unsigned char h[BC_FILE_HEADER_SIZE];
  switch (kind) {
    case FK_DATA:
    case FK_DATA_MERGING: {
      const uint8_t *body = c->body;
      size_t blen = c->blen;
      unsigned char *grown = NULL;
      if ((c->kind & FZ_BIT7) && blen >= 4 && (grown = grow(c->body, c->blen, &blen)))
        body = grown;
      int rc;
      if (c->kind & FZ_SYNTH) {
        bc_file_header_encode(h, id, (c->kind & FZ_BIT6) ? BC_FILE_FLAG_MERGED : 0);
        patch_header(h, c->idsel, 0);
        rc = join(f, h, sizeof h, body, blen, 0);
      } else {
        rc = join(f, NULL, 0, body, blen, 0);
      }
      free(grown);
      if (rc != 0) return -1;
      if (c->kind & FZ_FIX) fix_data(f, c->aux, !(c->kind & FZ_SYNTH));
      return 0;
    }
    case FK_HINT:
    case FK_HINT_MERGING:
    case FK_HINT_TMP:
      if (c->kind & FZ_SYNTH) {
        char dname[40];
        snprintf(dname, sizeof dname, "%010u%s", id,
                 kind == FK_HINT_MERGING ? ".data.merging" : ".data");
        const fz_file *d = find_file(fs, nfs, dname);
        uint64_t dsize = d && !(c->kind & FZ_BIT6) ? d->len : 0;
        bc_hint_header_encode(h, id, dsize);
        patch_header(h, c->idsel, 1);
        if (join(f, h, sizeof h, c->body, c->blen, BC_HINT_TRAILER_SIZE) != 0)
          return -1;
      } else if (join(f, NULL, 0, c->body, c->blen, BC_HINT_TRAILER_SIZE) != 0) {
        return -1;
      }
      if (c->kind & FZ_FIX) fix_hint(f, c->kind, c->aux, !(c->kind & FZ_SYNTH));
      return 0;
    case FK_MERGE:
    case FK_MERGE_TMP:
      if (c->kind & FZ_SYNTH) {
        size_t nid = c->blen ? c->blen - 1 : 0;
        size_t ni = c->blen ? c->body[0] : 0;
        if (ni > nid) ni = nid;
        uint32_t ids[256];
        if (nid > 256) nid = 256;
        if (ni > nid) ni = nid;
        for (size_t i = 0; i < nid; i++) ids[i] = c->body[1 + i];
        bc_manifest m = {ids, (uint32_t)ni, ids + ni, (uint32_t)(nid - ni)};
        size_t len;
        unsigned char *p = bc_manifest_encode(&m, &len);
        if (!p) return -1;
        if ((c->idsel >> 6) == 2) { /* version 2, CRC fixed */
          bc_put_u32(p + 8, 2);
          bc_put_u32(p + len - 4, crc_of(p, len - 4));
        }
        f->buf = p;
        f->len = len;
        return 0;
      }
      if (join(f, NULL, 0, c->body, c->blen, 0) != 0) return -1;
      if ((c->kind & FZ_FIX) && f->len >= 4)
        bc_put_u32(f->buf + f->len - 4, crc_of(f->buf, f->len - 4));
      return 0;
    case FK_MARKER:
      if (c->kind & FZ_SYNTH) {
        char text[128];
        int n = snprintf(text, sizeof text,
                         "bitcask-sqlite store\nformat %d\ncreated-dir %d\n",
                         (c->idsel >> 6) == 2 ? BC_FORMAT_VERSION + 1 : 1, c->aux & 1);
        return join(f, (const unsigned char *)text, (size_t)n, NULL, 0, 0);
      }
      return join(f, NULL, 0, c->body, c->blen, 0);
    default:
      return join(f, NULL, 0, c->body, c->blen, 0);
  }
}

typedef struct fz_archive {
  uint8_t pre[8];
  fz_file files[FZ_MAX_FILES];
  size_t nfiles;
} fz_archive;

static void archive_free(fz_archive *a) {
  for (size_t i = 0; i < a->nfiles; i++) free(a->files[i].buf);
  a->nfiles = 0;
}

static const uint8_t *find_sep(const uint8_t *p, size_t n) {
  return n >= FZ_SEP_LEN ? memmem(p, n, FZ_SEP, FZ_SEP_LEN) : NULL;
}

static int archive_parse(fz_archive *a, const uint8_t *data, size_t size) {
  memset(a, 0, sizeof *a);
  fz_chunk chunks[FZ_MAX_FILES];
  size_t nch = 0;
  const uint8_t *end = data + size;
  const uint8_t *sep = find_sep(data, size);
  size_t plen = (size_t)((sep ? sep : end) - data);
  memcpy(a->pre, data, plen < sizeof a->pre ? plen : sizeof a->pre);
  while (sep && nch < FZ_MAX_FILES) {
    const uint8_t *start = sep + FZ_SEP_LEN;
    const uint8_t *next = find_sep(start, (size_t)(end - start));
    const uint8_t *stop = next ? next : end;
    size_t n = (size_t)(stop - start);
    fz_chunk *c = &chunks[nch++];
    c->kind = n > 0 ? start[0] : 0;
    c->idsel = n > 1 ? start[1] : 0;
    c->aux = n > 2 ? start[2] : 0;
    c->body = n > 3 ? start + 3 : start;
    c->blen = n > 3 ? n - 3 : 0;
    sep = next;
  }
  /* Names; a later chunk of the same name replaces an earlier one. */
  int order[FZ_MAX_FILES];
  size_t nf = 0;
  for (size_t i = 0; i < nch; i++) {
    fz_file tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.kind = (chunks[i].kind & 0x0f) % FK_COUNT;
    kind_name(tmp.name, sizeof tmp.name, tmp.kind, chunks[i].idsel);
    tmp.is_dir = tmp.kind == FK_SUBDIR;
    size_t j;
    for (j = 0; j < nf; j++)
      if (strcmp(a->files[j].name, tmp.name) == 0) break;
    a->files[j] = tmp;
    order[j] = (int)i;
    if (j == nf) nf++;
  }
  a->nfiles = nf;
  /* Data first, then everything else. */
  for (int pass = 0; pass < 2; pass++)
    for (size_t j = 0; j < nf; j++) {
      fz_file *f = &a->files[j];
      int is_data = f->kind == FK_DATA || f->kind == FK_DATA_MERGING;
      if (f->is_dir || (pass == 0) != is_data) continue;
      if (build_file(a->files, nf, f, &chunks[order[j]]) != 0) {
        archive_free(a);
        return -1;
      }
    }
  return 0;
}

static int has_kind(const fz_archive *a, int kind) {
  for (size_t i = 0; i < a->nfiles; i++)
    if (a->files[i].kind == kind) return 1;
  return 0;
}

/* Does the archive hold both N.data and N.data.merging, or N.hint and
** N.hint.merging?  A writer finishing a merge renames one over the other,
** under a follower that has read the first: two versions of one file, which
** the engine never makes (merge outputs get fresh ids), so the follower
** check is off then. */
static int has_twins(const fz_archive *a) {
  for (size_t i = 0; i < a->nfiles; i++) {
    const fz_file *f = &a->files[i];
    if (f->is_dir || (f->kind != FK_DATA_MERGING && f->kind != FK_HINT_MERGING)) continue;
    char twin[40];
    size_t n = strlen(f->name) - strlen(".merging");
    memcpy(twin, f->name, n);
    twin[n] = 0;
    for (size_t j = 0; j < a->nfiles; j++)
      if (strcmp(a->files[j].name, twin) == 0) return 1;
  }
  return 0;
}

static void archive_write(const fz_archive *a, const char *dir) {
  char p[PATH_MAX];
  for (size_t i = 0; i < a->nfiles; i++) {
    const fz_file *f = &a->files[i];
    debugf("  file %s: %zu bytes%s\n", f->name, f->len, f->is_dir ? " (dir)" : "");
    path_in(p, dir, f->name);
    if (f->is_dir)
      (void)mkdir(p, 0755);
    else
      (void)write_file(p, f->buf, f->len);
  }
  if (!has_kind(a, FK_MARKER) && !(a->pre[0] & 0x08u)) {
    static const char text[] = "bitcask-sqlite store\nformat 1\ncreated-dir 0\n";
    path_in(p, dir, "BITCASK");
    (void)write_file(p, (const unsigned char *)text, sizeof text - 1);
  }
}

/* The staged write of the follower run: what becomes of file i.
**   0 whole from the start      1 appears only in stage 2
**   2 a prefix first, the rest appended in stage 2 (in place, as a writer
**     appends)                  3 removed in stage 2 */
static uint32_t stage_of(const fz_archive *a, size_t i) {
  uint32_t x = bc_get_u32(a->pre + 4) ^ (uint32_t)(i * 0x9e3779b9u);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

static void archive_write_stage(const fz_archive *a, const char *dir, int stage) {
  char p[PATH_MAX];
  if (stage == 1) {
    /* The marker and the directories at once. */
    fz_archive m = *a;
    m.nfiles = 0;
    for (size_t i = 0; i < a->nfiles; i++)
      if (a->files[i].is_dir || a->files[i].kind == FK_MARKER) m.files[m.nfiles++] = a->files[i];
    archive_write(&m, dir);
  }
  for (size_t i = 0; i < a->nfiles; i++) {
    const fz_file *f = &a->files[i];
    if (f->is_dir || f->kind == FK_MARKER) continue;
    uint32_t r = stage_of(a, i);
    size_t cut = (size_t)((r >> 8) % (f->len + 1));
    path_in(p, dir, f->name);
    switch (r % 4) {
      case 0:
        if (stage == 1) (void)write_file(p, f->buf, f->len);
        break;
      case 1:
        if (stage == 2) (void)write_file(p, f->buf, f->len);
        break;
      case 2:
        if (stage == 1) {
          (void)write_file(p, f->buf, cut);
        } else {
          int fd = open(p, O_WRONLY | O_CLOEXEC);
          if (fd >= 0) {
            size_t at = cut;
            while (at < f->len) {
              ssize_t w = pwrite(fd, f->buf + at, f->len - at, (off_t)at);
              if (w <= 0) break;
              at += (size_t)w;
            }
            close(fd);
          }
        }
        break;
      default:
        if (stage == 1) (void)write_file(p, f->buf, f->len);
        else (void)unlink(p);
    }
  }
}

/* ------------------------------------------------- driving the engine */

static int key_less(const void *a, size_t al, const void *b, size_t bl) {
  int c = memcmp(a, b, al < bl ? al : bl);
  return c < 0 || (c == 0 && al < bl);
}

/* Read every live key: iterate, look up, get.  Checks that the iteration,
** the count and the stats agree.  *first (may be NULL) receives a copy of
** the least key (caller frees). */
static void read_all(bc_store *s, unsigned char **first, size_t *firstlen) {
  if (first) {
    *first = NULL;
    *firstlen = 0;
  }
  bc_iter *it = NULL;
  if (bc_iter_open(s, &it) != BC_OK) return;
  bc_buf b = {0};
  const void *k;
  size_t kl, n = 0;
  bc_info info;
  while (bc_iter_next(it, &k, &kl, &info) == BC_OK) {
    n++;
    bc_info li, gi;
    check(bc_lookup(s, k, kl, &li) == BC_OK);
    check(li.seq == info.seq && li.value_size == info.value_size &&
          li.meta == info.meta);
    const void *v = NULL;
    bc_status st = bc_get(s, k, kl, &b, &v, &gi);
    if (st == BC_OK) {
      check(gi.seq == info.seq && gi.value_size == info.value_size);
      /* Touch the value's ends so ASan checks them. */
      volatile unsigned char sink = 0;
      if (gi.value_size) {
        sink ^= ((const unsigned char *)v)[0];
        sink ^= ((const unsigned char *)v)[gi.value_size - 1];
      }
      (void)sink;
    }
    /* The least key (the iteration order depends on the keydir's random
    ** hash seed; this does not, so that an input always does the same). */
#ifdef FZ_DEBUG
    /* FZ_FIRST=key: take that key (a debugging aid). */
    const char *want = getenv("FZ_FIRST");
    if (first && want && !(kl == strlen(want) && memcmp(k, want, kl) == 0)) continue;
#endif
    if (first && (!*first || key_less(k, kl, *first, *firstlen))) {
      unsigned char *c = malloc(kl ? kl : 1);
      if (c) {
        if (kl) memcpy(c, k, kl);
        free(*first);
        *first = c;
        *firstlen = kl;
      }
    }
  }
  check(bc_iter_next(it, &k, &kl, &info) == BC_DONE);
  bc_iter_close(it);
  bc_buf_free(&b);
  check(bc_count(s) == n);
  bc_stats stats;
  check(bc_stats_get(s, &stats) == BC_OK);
  check(stats.keys == n);
  char msg[64];
  (void)bc_errmsg_copy(s, msg, sizeof msg);
  (void)bc_errmsg(s);
  (void)bc_dir(s);
}

/* A put that returned BC_OK must read back (same store, nothing between). */
static void put_and_check(bc_store *s, const void *k, size_t kl, uint8_t meta,
                          const unsigned char *v, size_t vl) {
  if (bc_put(s, k, kl, meta, v, vl) != BC_OK) return;
  bc_buf b = {0};
  const void *got = NULL;
  bc_info info;
  bc_status st = bc_get(s, k, kl, &b, &got, &info);
  check(st == BC_OK);
  check(info.value_size == vl && info.meta == meta);
  check(vl == 0 || memcmp(got, v, vl) == 0);
  bc_buf_free(&b);
}

static void txn_round(bc_store *s, const uint8_t pre[8], const unsigned char *val,
                      size_t vl, const unsigned char *first, size_t firstlen) {
  bc_txn *t = NULL;
  uint64_t n_before = bc_count(s);
  if (bc_txn_begin(s, &t) != BC_OK) return;
  /* Standalone writes and merges wait for it. */
  check(bc_put(s, "x", 1, 0, "y", 1) == BC_BUSY);
  check(bc_merge(s, NULL) == BC_BUSY);
  unsigned nput = pre[3] & 7u;
  uint8_t meta = (uint8_t)((pre[3] >> 3) & 0x0fu);
  char key[32];
  for (unsigned i = 0; i < nput; i++) {
    int n = snprintf(key, sizeof key, "txn-%u", i);
    (void)bc_txn_put(t, key, (size_t)n, meta, val, vl / (i + 1));
  }
  unsigned d1 = 0, d2 = 0;
  int sp1 = bc_txn_savepoint(t, &d1) == BC_OK;
  if (first) (void)bc_txn_delete(t, first, firstlen);
  (void)bc_txn_put(t, "txn-sp", 6, meta, val, vl / 3);
  int sp2 = (pre[0] & 0x80u) && bc_txn_savepoint(t, &d2) == BC_OK;
  if (sp2) (void)bc_txn_put(t, "txn-sp2", 7, meta, val, vl / 5);
  /* t's view. */
  bc_buf b = {0};
  const void *v;
  bc_info info;
  (void)bc_txn_lookup(t, "txn-sp", 6, &info);
  (void)bc_txn_get(t, "txn-sp", 6, &b, &v, &info);
  if (first) (void)bc_txn_get(t, first, firstlen, &b, &v, &info);
  bc_iter *it = NULL;
  if (bc_iter_open_txn(t, &it) == BC_OK) {
    const void *k;
    size_t kl;
    while (bc_iter_next(it, &k, &kl, &info) == BC_OK)
      (void)bc_txn_get(t, k, kl, &b, &v, &info);
    bc_iter_close(it);
  }
  if (sp2) (void)bc_txn_rollback_to(t, d2);
  if (sp1) {
    if (pre[3] & 0x80u)
      (void)bc_txn_release(t, d1);
    else
      (void)bc_txn_rollback_to(t, d1);
  }
  (void)bc_txn_release(t, 99); /* no such savepoint: BC_INVALID */
  /* How many keys t sees: after a commit the store must see the same, after
  ** a rollback what it saw before t began. */
  uint64_t n_view = 0;
  int view_ok = 0;
  if (bc_iter_open_txn(t, &it) == BC_OK) {
    const void *k;
    size_t kl;
    while (bc_iter_next(it, &k, &kl, NULL) == BC_OK) n_view++;
    bc_iter_close(it);
    view_ok = 1;
  }
  switch (pre[1] >> 6) {
    case 0:
    case 1:
      if ((pre[1] >> 6) == 1 && bc_txn_prepare(t) != BC_OK) {
        (void)bc_txn_commit(t); /* frees t; fails again */
        break;
      }
      if (bc_txn_commit(t) == BC_OK && view_ok) check(bc_count(s) == n_view);
      break;
    case 2:
      check(bc_txn_rollback(t) == BC_OK);
      check(bc_count(s) == n_before);
      break;
    default:
      (void)bc_txn_prepare(t);
      check(bc_txn_rollback(t) == BC_OK);
      check(bc_count(s) == n_before);
      break;
  }
  bc_buf_free(&b);
}

/* A read-only store on <base>/<dir>, or NULL. */
static bc_store *open_ro(const char *dir) {
  char p[PATH_MAX], err[256];
  snprintf(p, sizeof p, "%s/%s", g_base, dir);
  bc_options o;
  bc_options_init(&o);
  o.read_only = 1;
  bc_store *s = NULL;
  bc_status st = bc_open(p, &o, &s, err, sizeof err);
  debugf("  read-only open of %s: %s %s\n", dir, bc_status_name(st),
         st == BC_OK ? "" : err);
  if (st != BC_OK) {
    check(s == NULL);
    return NULL;
  }
  read_all(s, NULL, NULL);
  debugf("    %llu keys\n", (unsigned long long)bc_count(s));
  check(bc_put(s, "k", 1, 0, "v", 1) == BC_READONLY);
  check(bc_delete(s, "k", 1) == BC_READONLY);
  check(bc_merge(s, NULL) == BC_READONLY);
  bc_txn *t = NULL;
  check(bc_txn_begin(s, &t) == BC_READONLY && t == NULL);
  check(bc_sync(s) == BC_OK);
  return s;
}

static void open_read_only(const char *dir) {
  bc_store *s = open_ro(dir);
  if (s) (void)bc_close(s);
}

/* Follower f of <base>/<dir> catches up with bc_refresh.  After a refresh
** that worked, it must see what a fresh read-only open sees: the same keys,
** each with the same seq, size and meta.  Only the writer round calls this
** with compare set (there the changes come from the engine itself). */
static void follow(bc_store *f, const char *dir, int compare) {
  if (!f) return;
  bc_status st = bc_refresh(f);
  debugf("    refresh: %s\n", bc_status_name(st));
  read_all(f, NULL, NULL);
  if (st != BC_OK || !compare) return;
  bc_store *g = open_ro(dir);
  if (!g) return;
  bc_iter *it = NULL;
  if (bc_iter_open(g, &it) == BC_OK) {
    const void *k;
    size_t kl;
    bc_info gi, fi;
    uint64_t n = 0;
    while (bc_iter_next(it, &k, &kl, &gi) == BC_OK) {
      n++;
      bc_status lst = bc_lookup(f, k, kl, &fi);
      if (lst != BC_OK || fi.seq != gi.seq || fi.value_size != gi.value_size ||
          fi.meta != gi.meta) {
        fprintf(stderr,
                "fuzz_open: follower differs from a fresh open: key of %zu bytes "
                "seq %llu: follower %s seq %llu\n",
                kl, (unsigned long long)gi.seq, bc_status_name(lst),
                lst == BC_OK ? (unsigned long long)fi.seq : 0ull);
        check(!"follower sees what a fresh open sees");
      }
    }
    bc_iter_close(it);
    if (bc_count(f) != n)
      fprintf(stderr, "fuzz_open: follower has %llu keys, a fresh open %llu\n",
              (unsigned long long)bc_count(f), (unsigned long long)n);
    check(bc_count(f) == n);
  }
  (void)bc_close(g);
}

/* The read-only side: a plain open, or (pre[4] bit 0 clear and not a big
** input) a follower opened on part of the files that then refreshes after
** the rest arrive. */
static void reader_round(const fz_archive *a, int big) {
  if ((a->pre[4] & 1u) || big) {
    archive_write(a, "ro");
    open_read_only("ro");
    return;
  }
  archive_write_stage(a, "ro", 1);
  bc_store *f = open_ro("ro");
  archive_write_stage(a, "ro", 2);
  follow(f, "ro", 0);
  follow(f, "ro", 0);
  (void)bc_close(f);
  open_read_only("ro");
}

/* A copy of every live key and its info (iterators are cursors on an open
** store, so what a store held at its close is copied out before it). */
typedef struct snap {
  unsigned char **k;
  size_t *kl;
  bc_info *info;
  size_t n, cap;
} snap;

static void snap_free(snap *sn) {
  for (size_t i = 0; i < sn->n; i++) free(sn->k[i]);
  free(sn->k);
  free(sn->kl);
  free(sn->info);
  memset(sn, 0, sizeof *sn);
}

/* 0 ok, -1 out of memory (sn empty then). */
static int snap_take(bc_store *s, snap *sn) {
  memset(sn, 0, sizeof *sn);
  bc_iter *it = NULL;
  if (bc_iter_open(s, &it) != BC_OK) return -1;
  const void *k;
  size_t kl;
  bc_info info;
  bc_status st;
  while ((st = bc_iter_next(it, &k, &kl, &info)) == BC_OK) {
    if (sn->n == sn->cap) {
      size_t cap = sn->cap ? sn->cap * 2 : 64;
      unsigned char **a = realloc(sn->k, cap * sizeof *a);
      if (a) sn->k = a;
      size_t *b = realloc(sn->kl, cap * sizeof *b);
      if (b) sn->kl = b;
      bc_info *c = realloc(sn->info, cap * sizeof *c);
      if (c) sn->info = c;
      if (!a || !b || !c) break;
      sn->cap = cap;
    }
    unsigned char *copy = malloc(kl ? kl : 1);
    if (!copy) break;
    if (kl) memcpy(copy, k, kl);
    sn->k[sn->n] = copy;
    sn->kl[sn->n] = kl;
    sn->info[sn->n] = info;
    sn->n++;
  }
  bc_iter_close(it);
  if (st != BC_DONE) {
    snap_free(sn);
    return -1;
  }
  return 0;
}

/* Store s must hold exactly the keys of snapshot sn (each with the same
** seq, size and meta).  what: for the message. */
static void same_view(const snap *sn, bc_store *s, const char *what) {
  bc_info got;
  for (size_t i = 0; i < sn->n; i++) {
    const bc_info *want = &sn->info[i];
    bc_status st = bc_lookup(s, sn->k[i], sn->kl[i], &got);
    if (st != BC_OK || got.seq != want->seq || got.value_size != want->value_size ||
        got.meta != want->meta) {
      fprintf(stderr, "fuzz_open: %s: key of %zu bytes seq %llu: now %s seq %llu\n",
              what, sn->kl[i], (unsigned long long)want->seq, bc_status_name(st),
              st == BC_OK ? (unsigned long long)got.seq : 0ull);
      check(!"the reopened store holds what the store held at its close");
    }
  }
  if (bc_count(s) != sn->n)
    fprintf(stderr, "fuzz_open: %s: %zu keys at close, %llu after the reopen\n", what,
            sn->n, (unsigned long long)bc_count(s));
  check(bc_count(s) == sn->n);
}

static void writer_round(const uint8_t pre[8], int compare, int reopen_check) {
  char p[PATH_MAX], err[256];
  /* A follower from before the writer's open. */
  bc_store *fw = open_ro("rw");
  snprintf(p, sizeof p, "%s/rw", g_base);
  bc_options o;
  bc_options_init(&o);
  switch (pre[0] & 3u) {
    case 2: o.sync = BC_SYNC_NORMAL; break;
    case 3: o.sync = BC_SYNC_FULL; break;
    default: o.sync = BC_SYNC_OFF; break;
  }
  if (pre[0] & 0x04u) o.max_file_size = BC_MIN_MAX_FILE_SIZE;
  o.create = (pre[0] & 0x10u) ? 1 : 0;
  bc_store *s = NULL;
  bc_status st = bc_open(p, &o, &s, err, sizeof err);
  debugf("  writer open: %s %s\n", bc_status_name(st), st == BC_OK ? "" : err);
  if (st != BC_OK) {
    check(s == NULL);
    follow(fw, "rw", compare);
    (void)bc_close(fw);
    return;
  }
  if (!fw) fw = open_ro("rw"); /* the writer may have made the store */
  follow(fw, "rw", compare);
  check(bc_refresh(s) == BC_OK); /* a no-op on a writer */
  /* A second writer of the same directory is refused. */
  bc_store *s2 = NULL;
  check(bc_open(p, &o, &s2, err, sizeof err) == BC_LOCKED && s2 == NULL);

  unsigned char *first = NULL;
  size_t firstlen = 0;
  read_all(s, &first, &firstlen);
  {
    bc_stats stats;
    bc_stats_get(s, &stats);
    debugf("    %llu keys, %llu files, %llu hints, corrupt %llu, truncated %llu\n",
           (unsigned long long)stats.keys, (unsigned long long)stats.data_files,
           (unsigned long long)stats.hint_files, (unsigned long long)stats.corrupt,
           (unsigned long long)stats.truncated_bytes);
  }

  size_t vl = (size_t)pre[2] * 64u;
  unsigned char *val = malloc(vl ? vl : 1);
  if (!val) {
    free(first);
    bc_close(s);
    bc_close(fw);
    return;
  }
  for (size_t i = 0; i < vl; i++) val[i] = (unsigned char)(i * 131u + pre[2]);
  uint8_t meta = (uint8_t)((pre[3] >> 3) & 0x0fu);

  if (!(pre[1] & 0x01u)) {
    put_and_check(s, "fz-new", 6, meta, val, vl);
    put_and_check(s, "", 0, 0, val, vl / 2);
    put_and_check(s, "fz-new", 6, (uint8_t)(meta + 1), val, vl / 4);
  }
  if (!(pre[1] & 0x02u) && first) put_and_check(s, first, firstlen, meta, val, vl / 3);
  if (!(pre[1] & 0x04u)) {
    if (bc_delete(s, "fz-new", 6) == BC_OK)
      check(bc_lookup(s, "fz-new", 6, NULL) == BC_NOTFOUND);
    (void)bc_delete(s, "fz-absent", 9);
  }
  (void)bc_sync(s);
  follow(fw, "rw", compare);
  if (!(pre[1] & 0x08u)) {
    txn_round(s, pre, val, vl, first, firstlen);
    follow(fw, "rw", compare);
  }
  if (!(pre[1] & 0x10u)) {
    uint64_t reclaimed = 0;
    st = bc_merge(s, &reclaimed);
    debugf("    merge: %s %s\n", bc_status_name(st), st == BC_OK ? "" : bc_errmsg(s));
    follow(fw, "rw", compare);
    put_and_check(s, "after-merge", 11, meta, val, vl / 2);
    (void)bc_sync(s);
  }
  read_all(s, NULL, NULL);
  snap at_close;
  int have_snap = snap_take(s, &at_close) == 0;
  bc_status cst = bc_close(s);
  follow(fw, "rw", compare);
  free(val);
  free(first);

  if (!(pre[1] & 0x20u)) {
    /* What the engine wrote on top of the input must open again (unless the
    ** input put a directory where a file goes: then the engine's unlinks
    ** and renames may fail for good), with what it held at the close. */
    o.create = 0;
    st = bc_open(p, &o, &s, err, sizeof err);
    debugf("  writer reopen: %s %s\n", bc_status_name(st), st == BC_OK ? "" : err);
    if (reopen_check && cst == BC_OK && st != BC_OK) {
      fprintf(stderr, "fuzz_open: the reopen failed: %s\n", err);
      check(!"a store closed without error opens again");
    }
    if (st == BC_OK && reopen_check && cst == BC_OK && have_snap)
      same_view(&at_close, s, "reopen");
    if (st == BC_OK) {
      read_all(s, NULL, NULL);
      follow(fw, "rw", compare);
      (void)bc_merge(s, NULL);
      read_all(s, NULL, NULL);
      (void)bc_close(s);
      follow(fw, "rw", compare);
    }
  }
  snap_free(&at_close);
  (void)bc_close(fw);
  /* Last, delete it (it may take the directory: LLVMFuzzerTestOneInput
  ** makes it again). */
  if (!(pre[1] & 0x20u)) {
    bc_status dst = bc_destroy(p, err, sizeof err);
    check(dst == BC_OK || dst == BC_NOTSTORE || dst == BC_IOERR);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (make_base() != 0) {
    fprintf(stderr, "fuzz_open: cannot create a temporary directory\n");
    abort();
  }
  clean_dir("ro");
  clean_dir("rw");
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/rw", g_base);
  (void)mkdir(p, 0755); /* bc_destroy may have removed it */
  fz_archive a;
  if (archive_parse(&a, data, size) != 0) return 0;
  int fds_before = count_fds();
  /* Big files (grow) make every open scan a megabyte or more, slow under
  ** libFuzzer's instrumentation: fewer opens then (no staged follower, no
  ** comparisons with fresh opens). */
  size_t total = 0;
  for (size_t i = 0; i < a.nfiles; i++) total += a.files[i].len;
  int big = total > ((size_t)1 << 20);
  if (!(a.pre[0] & 0x20u)) reader_round(&a, big);
  if (!(a.pre[0] & 0x40u)) {
    archive_write(&a, "rw");
    writer_round(a.pre, !big && !has_twins(&a), !has_kind(&a, FK_SUBDIR));
  }
  int fds_after = count_fds();
  if (fds_before >= 0 && fds_after != fds_before) {
    fprintf(stderr, "fuzz_open: %d file descriptors leaked\n", fds_after - fds_before);
    abort();
  }
  archive_free(&a);
  clean_dir("ro");
  clean_dir("rw");
  return 0;
}

/* ------------------------------------------------------- seed packing */

/* Pack the files of store directory `dir` into an archive with preamble
** `pre`.  style bit 0: data and hint files raw (else SYNTH|FIX chunks, which
** rebuild the same bytes when the files are intact); bit 1: include the
** BITCASK marker (else the default one); bit 2: include LOCK.  Files whose
** id is above 32 are skipped.  *out is malloc'd.  0, or -1 on error. */
int fuzz_pack_dir(const char *dir, const unsigned char pre[8], int style,
                  unsigned char **out, size_t *outlen) {
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) return -1;
  memcpy(buf, pre, 8);
  len = 8;
  int rc = 0, nchunks = 0;
  /* Sorted by name, so the output is reproducible. */
  struct dirent **names = NULL;
  int nn = scandir(dir, &names, NULL, alphasort);
  if (nn < 0) {
    free(buf);
    return -1;
  }
  for (int i = 0; i < nn && rc == 0; i++) {
    const struct dirent *de = names[i];
    uint32_t id;
    int nk = bc_name_kind(de->d_name, &id);
    int kind;
    switch (nk) {
      case BC_NAME_DATA: kind = FK_DATA; break;
      case BC_NAME_HINT: kind = FK_HINT; break;
      case BC_NAME_DATA_MERGING: kind = FK_DATA_MERGING; break;
      case BC_NAME_HINT_MERGING: kind = FK_HINT_MERGING; break;
      case BC_NAME_HINT_TMP: kind = FK_HINT_TMP; break;
      case BC_NAME_MERGE: kind = FK_MERGE; break;
      case BC_NAME_MERGE_TMP: kind = FK_MERGE_TMP; break;
      case BC_NAME_LOCK: kind = (style & 4) ? FK_LOCK : -1; break;
      case BC_NAME_MARKER: kind = (style & 2) ? FK_MARKER : -1; break;
      default: kind = -1;
    }
    if (kind < 0) continue;
    if (id > 32) continue;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rc = -1;
      break;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
      close(fd);
      rc = -1;
      break;
    }
    size_t fl = (size_t)sb.st_size;
    unsigned char *fb = malloc(fl ? fl : 1);
    if (!fb || bc_read_all(&bc_posix_io, fd, fb, fl, 0) != (ssize_t)fl) {
      free(fb);
      close(fd);
      rc = -1;
      break;
    }
    close(fd);
    uint8_t ck = (uint8_t)kind, idsel = id ? (uint8_t)(id - 1) : 0, aux = 0;
    const unsigned char *body = fb;
    size_t bl = fl;
    int data = kind == FK_DATA || kind == FK_DATA_MERGING;
    int hint = kind == FK_HINT || kind == FK_HINT_MERGING || kind == FK_HINT_TMP;
    if (!(style & 1) && (data || hint) && fl >= 32) {
      uint32_t ver, flags = 0, fid;
      if (data && bc_file_header_decode(fb, &ver, &flags, &fid) == 0 && ver == 1 &&
          fid == id) {
        ck |= FZ_SYNTH | FZ_FIX;
        if (flags & BC_FILE_FLAG_MERGED) ck |= FZ_BIT6;
        body = fb + 32;
        bl = fl - 32;
      }
      uint64_t dsz;
      if (hint && fl >= 48 && bc_hint_header_decode(fb, &ver, &fid, &dsz) == 0 &&
          ver == 1 && fid == id) {
        ck |= FZ_SYNTH | FZ_FIX;
        body = fb + 32;
        bl = fl - 32 - BC_HINT_TRAILER_SIZE; /* the trailer is rebuilt */
      }
    }
    size_t need = len + FZ_SEP_LEN + 3 + bl;
    if (need > cap) {
      while (cap < need) cap *= 2;
      unsigned char *nb = realloc(buf, cap);
      if (!nb) {
        free(fb);
        rc = -1;
        break;
      }
      buf = nb;
    }
    memcpy(buf + len, FZ_SEP, FZ_SEP_LEN);
    len += FZ_SEP_LEN;
    buf[len++] = ck;
    buf[len++] = idsel;
    buf[len++] = aux;
    if (bl) memcpy(buf + len, body, bl);
    len += bl;
    nchunks++;
    free(fb);
  }
  for (int i = 0; i < nn; i++) free(names[i]);
  free(names);
  if (rc != 0 || nchunks > FZ_MAX_FILES) {
    free(buf);
    return -1;
  }
  /* The separator must not occur inside a file, or the archive would not
  ** unpack to the same files. */
  size_t seps = 0;
  for (const uint8_t *q = buf; (q = find_sep(q, (size_t)(buf + len - q))) != NULL;
       q += FZ_SEP_LEN)
    seps++;
  if (seps != (size_t)nchunks) {
    free(buf);
    return -1;
  }
  *out = buf;
  *outlen = len;
  return 0;
}
