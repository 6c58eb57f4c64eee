/*-------------------------------------------------------------------------
 *
 * fuzz_values.h
 *	  Interesting integers and the value generators shared by the text and
 *	  binary input generators.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_FUZZ_VALUES_H
#define SALES_KPI_FUZZ_VALUES_H

#include "fuzz.h"

/* integers on or next to a limit of some field of some summary */
static inline int64
interesting_int64(FuzzRng *r)
{
	static const int64 v[] = {
		0, 1, 2, -1, -2, 3, 7, 63, 64, 65, 255, 256, 365, 366, 517, 518, 729,
		730, 990, 991, 3699, 3700, 65535, 65536,
		PG_INT32_MAX, (int64) PG_INT32_MAX + 1, PG_INT32_MIN, (int64) PG_INT32_MIN - 1,
		(int64) PG_UINT32_MAX, (int64) PG_UINT32_MAX + 1,
		PG_INT64_MAX, PG_INT64_MAX - 1, PG_INT64_MIN, PG_INT64_MIN + 1,
		INT64CONST(988091), INT64CONST(988092), INT64CONST(316989541716344),
		INT64CONST(316989541716345), INT64CONST(1000000), INT64CONST(86400000000),
		INT64CONST(1000000000000000000), INT64CONST(5421010862427522170),
		INT64CONST(4611686018427387904), INT64CONST(-4611686018427387904),
	};
	int64		x = v[rng_below(r, sizeof(v) / sizeof(v[0]))];

	/* sometimes a neighbour */
	if (rng_chance(r, 20))
		x += (int64) rng_below(r, 5) - 2;
	return x;
}

/* a count-like value: mostly small, sometimes interesting, sometimes random */
static inline int64
random_count(FuzzRng *r)
{
	switch (rng_below(r, 6))
	{
		case 0:
			return interesting_int64(r);
		case 1:
			return (int64) rng_next(r);
		case 2:
			return (int64) rng_below(r, 1000000);
		default:
			return (int64) rng_below(r, 10);
	}
}

extern void random_number_text(FuzzRng *r, StringInfo out);
extern const FuzzValue *pick_value(FuzzRng *r, FuzzPool *pool);

#endif							/* SALES_KPI_FUZZ_VALUES_H */
