/*
** rng.h -- the random numbers of the randomised tests (crash_txn, powerloss,
** model_test): splitmix64, so that a printed seed replays a run exactly.
*/
#ifndef BC_TEST_RNG_H
#define BC_TEST_RNG_H

#include <stdint.h>

typedef struct rng {
  uint64_t s;
} rng;

static inline uint64_t next(rng *r) { /* splitmix64 */
  uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* A number in [0, n), 0 when n is 0. */
static inline uint32_t below(rng *r, uint32_t n) {
  return n ? (uint32_t)(next(r) % n) : 0;
}

#endif /* BC_TEST_RNG_H */
