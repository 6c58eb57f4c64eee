/*-------------------------------------------------------------------------
 *
 * fuzz_rng.c
 *	  The harness's only source of randomness: xoshiro256** seeded through
 *	  splitmix64, so that a seed reproduces a run exactly on any platform.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

static uint64
splitmix64(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

void
rng_seed(FuzzRng *r, uint64 seed)
{
	uint64		x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64
rotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64
rng_next(FuzzRng *r)
{
	uint64	   *s = r->s;
	uint64		result = rotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* uniform in [0, n) by rejection, so no value is favoured; 0 for n == 0 */
uint64
rng_below(FuzzRng *r, uint64 n)
{
	uint64		limit,
				x;

	if (n <= 1)
		return 0;
	limit = PG_UINT64_MAX - PG_UINT64_MAX % n;
	do
		x = rng_next(r);
	while (x >= limit);
	return x % n;
}

bool
rng_chance(FuzzRng *r, int percent)
{
	return rng_below(r, 100) < (uint64) percent;
}

double
rng_unit(FuzzRng *r)
{
	return (double) (rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
