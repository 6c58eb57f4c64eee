/*-------------------------------------------------------------------------
 *
 * exact_sum.c
 *	  Exact decimal arithmetic in a 128-bit integer at a decimal scale.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "exact_sum.h"

/*
 * The on-disk format of numeric (src/backend/utils/adt/numeric.c).  It is
 * part of the stored data of every database, so pg_upgrade keeps it stable.
 * Digits are base-10000 int16s, most significant first.
 */
#define NBASE				10000
#define DEC_DIGITS			4
#define NUMERIC_SIGN_MASK	0xC000
#define NUMERIC_NEG			0x4000
#define NUMERIC_SHORT		0x8000
#define NUMERIC_SPECIAL		0xC000
#define NUMERIC_DSCALE_MASK 0x3FFF
#define NUMERIC_SHORT_SIGN_MASK			0x2000
#define NUMERIC_SHORT_DSCALE_MASK		0x1F80
#define NUMERIC_SHORT_DSCALE_SHIFT		7
#define NUMERIC_SHORT_WEIGHT_SIGN_MASK	0x0040
#define NUMERIC_SHORT_WEIGHT_MASK		0x003F

/* 10^0 .. 10^38 */
static int128 pow10_table[EXACT_MAX_SCALE + 1];
static bool pow10_ready = false;

static inline const int128 *
pow10s(void)
{
	if (unlikely(!pow10_ready))
	{
		pow10_table[0] = 1;
		for (int i = 1; i <= EXACT_MAX_SCALE; i++)
			pow10_table[i] = pow10_table[i - 1] * 10;
		pow10_ready = true;
	}
	return pow10_table;
}

void
exact_overflow_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("%s is out of range for exact accumulation", what),
			 errdetail("Exact sums keep at most 38 digits, counting the decimals.")));
}

/*
 * Reads a numeric datum as mantissa and scale (its display scale).
 */
ExactStatus
exact_from_numeric(Datum num, int128 *mantissa, int32 *scale)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(num));
	const char *data = VARDATA_ANY(v);
	int			len = VARSIZE_ANY_EXHDR(v);
	uint16		header;
	int			weight;
	int			dscale;
	bool		negative;
	const int16 *digits;
	int			ndigits;
	const int128 *p10 = pow10s();
	int128		m = 0;

	memcpy(&header, data, sizeof(uint16));
	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL)
		return EXACT_NOT_FINITE;
	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SHORT)
	{
		negative = (header & NUMERIC_SHORT_SIGN_MASK) != 0;
		dscale = (header & NUMERIC_SHORT_DSCALE_MASK) >> NUMERIC_SHORT_DSCALE_SHIFT;
		weight = (header & NUMERIC_SHORT_WEIGHT_SIGN_MASK) ?
			(int) (~NUMERIC_SHORT_WEIGHT_MASK | (header & NUMERIC_SHORT_WEIGHT_MASK)) :
			(int) (header & NUMERIC_SHORT_WEIGHT_MASK);
		digits = (const int16 *) (data + sizeof(uint16));
		ndigits = (len - (int) sizeof(uint16)) / (int) sizeof(int16);
	}
	else
	{
		int16		w;

		negative = (header & NUMERIC_SIGN_MASK) == NUMERIC_NEG;
		dscale = header & NUMERIC_DSCALE_MASK;
		memcpy(&w, data + sizeof(uint16), sizeof(int16));
		weight = w;
		digits = (const int16 *) (data + 2 * sizeof(uint16));
		ndigits = (len - 2 * (int) sizeof(uint16)) / (int) sizeof(int16);
	}
	if (dscale > EXACT_MAX_SCALE)
		return EXACT_OVERFLOW;

	for (int i = 0; i < ndigits; i++)
	{
		int16		d;
		int			e = DEC_DIGITS * (weight - i) + dscale;	/* power of ten of this digit */

		memcpy(&d, &digits[i], sizeof(int16));
		if (d == 0)
			continue;
		if (e < 0)
		{
			/* digits past the display scale are zero: divide exactly */
			if (-e >= DEC_DIGITS || d % (int) p10[-e] != 0)
				return EXACT_OVERFLOW;
			d /= (int) p10[-e];
			e = 0;
		}
		if (e > EXACT_MAX_SCALE)
			return EXACT_OVERFLOW;
		{
			int128		term;

			/*
			 * A digit (< 10^4) times 10^e cannot overflow for e <= 34, and
			 * the checked 128-bit multiply is a library call: keep it off
			 * the common path.
			 */
			if (e <= 34)
				term = (int128) d * p10[e];
			else if (__builtin_mul_overflow((int128) d, p10[e], &term))
				return EXACT_OVERFLOW;
			if (__builtin_add_overflow(m, term, &m))
				return EXACT_OVERFLOW;
		}
	}
	if (!exact_in_range(m))
		return EXACT_OVERFLOW;
	*mantissa = negative ? -m : m;
	*scale = dscale;
	return EXACT_OK;
}

/* Raises the scale of a value (scales never go down: that would round). */
bool
exact_rescale(int128 *mantissa, int32 *scale, int32 new_scale)
{
	int128		m;

	if (new_scale <= *scale)
		return true;
	if (new_scale > EXACT_MAX_SCALE ||
		__builtin_mul_overflow(*mantissa, pow10s()[new_scale - *scale], &m) ||
		!exact_in_range(m))
		return false;
	*mantissa = m;
	*scale = new_scale;
	return true;
}

/* acc += m, keeping the larger scale; on overflow acc is left unchanged */
bool
exact_add(int128 *acc, int32 *acc_scale, int128 m, int32 scale)
{
	int128		a = *acc;
	int32		a_scale = *acc_scale;
	int128		sum;

	if (scale > a_scale)
	{
		if (!exact_rescale(&a, &a_scale, scale))
			return false;
	}
	else if (scale < a_scale)
	{
		if (!exact_rescale(&m, &scale, a_scale))
			return false;
	}
	if (__builtin_add_overflow(a, m, &sum) || !exact_in_range(sum))
		return false;
	*acc = sum;
	*acc_scale = a_scale;
	return true;
}

bool
exact_mul(int128 a, int32 a_scale, int128 b, int32 b_scale,
		  int128 *result, int32 *result_scale)
{
	int128		product;

	if (a_scale + b_scale > EXACT_MAX_SCALE)
		return false;
	/* two 64-bit factors always fit in 128 bits; skip the library call */
	if (a == (int64) a && b == (int64) b)
		product = a * b;
	else if (__builtin_mul_overflow(a, b, &product))
		return false;
	if (!exact_in_range(product))
		return false;
	*result = product;
	*result_scale = a_scale + b_scale;
	return true;
}

void
exact_append_decimal(StringInfo buf, int128 mantissa, int32 scale)
{
	char		digits[EXACT_MAX_SCALE + 2];
	int			n = 0;
	bool		negative = mantissa < 0;
	uint128		u = negative ? -(uint128) mantissa : (uint128) mantissa;

	/* digits in reverse, at least scale + 1 of them */
	do
	{
		digits[n++] = '0' + (int) (u % 10);
		u /= 10;
	} while (u != 0 || n <= scale);

	if (negative)
		appendStringInfoChar(buf, '-');
	while (n > 0)
	{
		appendStringInfoChar(buf, digits[--n]);
		if (n == scale && scale > 0)
			appendStringInfoChar(buf, '.');
	}
}

Numeric
exact_to_numeric(int128 mantissa, int32 scale)
{
	StringInfoData buf;
	Datum		result;

	initStringInfo(&buf);
	exact_append_decimal(&buf, mantissa, scale);
	result = DirectFunctionCall3(numeric_in, CStringGetDatum(buf.data),
								 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	pfree(buf.data);
	return DatumGetNumeric(result);
}

/*
 * [-]digits[.digits], at most 38 digits in all, not counting leading zeros
 * (so "0.00000000000000000000000000000000000001", the text form of the
 * smallest value of scale 38, reads back), and at most 38 decimals.
 */
bool
exact_parse_decimal(const char *text, int128 *mantissa, int32 *scale)
{
	const char *p = text;
	bool		negative = false;
	bool		seen_point = false;
	int			ndigits = 0;
	int128		m = 0;
	int32		s = 0;

	if (*p == '-')
	{
		negative = true;
		p++;
	}
	if (!isdigit((unsigned char) *p))
		return false;
	for (; *p != '\0'; p++)
	{
		if (*p == '.' && !seen_point)
		{
			seen_point = true;
			if (!isdigit((unsigned char) p[1]))
				return false;
			continue;
		}
		if (!isdigit((unsigned char) *p))
			return false;
		/* a leading zero adds nothing to the mantissa */
		if ((m != 0 || *p != '0') && ++ndigits > EXACT_MAX_SCALE)
			return false;
		m = m * 10 + (*p - '0');
		if (seen_point && ++s > EXACT_MAX_SCALE)
			return false;
	}
	*mantissa = negative ? -m : m;
	*scale = s;
	return true;
}
