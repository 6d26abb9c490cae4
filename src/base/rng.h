/* rng.h - the project's seeded pseudo-random generator: xoshiro256** (Blackman & Vigna) seeded
 * by splitmix64. Deterministic on every machine for a given seed, so sampling, dropout and
 * synthetic data reproduce exactly. The state is four 64-bit words the caller owns (it can be
 * saved and restored byte for byte); one thread uses a state at a time. */
#ifndef TW_RNG_H
#define TW_RNG_H

#include <stdint.h>

/* Fills s[0..3] from 'seed' with splitmix64 (never four zero words). */
void tw_rng_seed(uint64_t s[4], uint64_t seed);
/* The next 64 random bits; advances s. */
uint64_t tw_rng_next(uint64_t s[4]);

#endif
