/*-------------------------------------------------------------------------
 *
 * demo_random.c
 *	  Deterministic pseudo-random numbers for the demo data generator.
 *
 * load_demo() builds its rows set-wise, so the order in which the executor
 * evaluates rows is not fixed (parallel workers, plan changes).  random()
 * with setseed() would then give different data on every run.  Instead each
 * random draw is a pure function of (seed, key): the same seed always gives
 * the same rows, whatever the plan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

/*
 * SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective mix of the
 * 64-bit input with good avalanche, enough for demo data.
 */
static inline uint64
splitmix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

/*
 * demo_random(seed int, key bigint) -> float8 in [0, 1)
 *
 * Callers build the key from an entity id and a small "salt" naming the
 * draw (for example id * 64 + 3), so different draws for one entity are
 * independent.
 */
PG_FUNCTION_INFO_V1(demo_random);
Datum
demo_random(PG_FUNCTION_ARGS)
{
	int32		seed = PG_GETARG_INT32(0);
	int64		key = PG_GETARG_INT64(1);
	uint64		h;

	h = splitmix64(splitmix64((uint64) (uint32) seed) ^ (uint64) key);
	/* top 53 bits give a uniformly spaced double in [0, 1) */
	PG_RETURN_FLOAT8((double) (h >> 11) * (1.0 / 9007199254740992.0));
}
