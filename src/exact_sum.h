/*-------------------------------------------------------------------------
 *
 * exact_sum.h
 *	  Exact decimal arithmetic in a 128-bit integer at a decimal scale.
 *
 * Money accumulates exactly: a value is a mantissa m and a scale s meaning
 * m / 10^s.  A sum keeps the largest scale it has seen, so it equals the SQL
 * sum() of the same numerics to the last digit.  Every value has at most 38
 * digits (|m| < 10^38), what the text form of a summary reads back; every
 * operation reports overflow beyond that instead of wrapping, leaving its
 * accumulator unchanged, and callers turn that into an error.  Reading a numeric decodes its on-disk digits directly, so the
 * per-row path allocates nothing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_EXACT_SUM_H
#define SALES_KPI_EXACT_SUM_H

#include "lib/stringinfo.h"
#include "utils/numeric.h"

#define EXACT_MAX_SCALE 38

/*
 * Every value kept has at most 38 digits, |m| < 10^38: what the text form
 * reads back.  int128 itself would hold some 39-digit values, which a
 * summary could then store but not restore from a dump.
 */
#define EXACT_LIMIT ((int128) 1000000000000000000 * 1000000000000000000 * 100)

static inline bool
exact_in_range(int128 mantissa)
{
	return mantissa < EXACT_LIMIT && mantissa > -EXACT_LIMIT;
}

typedef enum ExactStatus
{
	EXACT_OK,
	EXACT_NOT_FINITE,			/* NaN or infinity */
	EXACT_OVERFLOW				/* more than 38 digits */
} ExactStatus;

extern ExactStatus exact_from_numeric(Datum num, int128 *mantissa, int32 *scale);
extern bool exact_rescale(int128 *mantissa, int32 *scale, int32 new_scale);
extern bool exact_add(int128 *acc, int32 *acc_scale, int128 m, int32 scale);
extern bool exact_mul(int128 a, int32 a_scale, int128 b, int32 b_scale,
					  int128 *result, int32 *result_scale);
extern Numeric exact_to_numeric(int128 mantissa, int32 scale);
extern void exact_append_decimal(StringInfo buf, int128 mantissa, int32 scale);
extern bool exact_parse_decimal(const char *text, int128 *mantissa, int32 *scale);
extern void exact_overflow_error(const char *what) pg_attribute_noreturn();

#endif							/* SALES_KPI_EXACT_SUM_H */
