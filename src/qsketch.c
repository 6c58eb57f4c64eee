/*-------------------------------------------------------------------------
 *
 * qsketch.c
 *	  Mergeable quantile sketch for durations, with 1% relative error.
 *
 * This file is pure C99 with no PostgreSQL dependency, so that it can be
 * unit-tested on its own (test/unit/qsketch_test.c); the fmgr wrapper
 * stores the QSketch struct as a varlena payload.
 *
 * Buckets
 * -------
 *
 * Let gamma = 2^(1/35).  Grid position g is the half-open interval of reals
 * [2^(g/35), 2^((g+1)/35)), so every bucket has the ratio gamma between its
 * ends and each power of two [2^e, 2^(e+1)) splits into exactly 35 buckets
 * j = 0 .. 34 with g = 35 e + j.  Because gamma^35 = 2 the split is the same
 * in every octave, which is what lets the mapping use a single small table.
 * 35 is the fewest buckets per octave that meets 1%: with 34 the ratio
 * would be 2^(1/34) = 1.02059 > 1.01/0.99.
 *
 * Mapping a value to its bucket (integer work only)
 * -------------------------------------------------
 *
 * For an integer v >= 1 let e = floor(log2 v), the position of its leading
 * one bit, and m = v << (63 - e), its bits normalized so that the leading
 * one is bit 63; the shift loses nothing, so m = v * 2^(63-e) exactly and
 * 2^63 <= m < 2^64.  Let T[j] = ceil(2^(63 + j/35)) for j = 0 .. 34 (so
 * T[0] = 2^63).  Since m is an integer, m >= T[j] iff m >= 2^(63 + j/35)
 * iff v >= 2^(e + j/35).  Hence the j with T[j] <= m < T[j+1] (T[35] is a
 * sentinel beyond every m) is exactly the j with
 * 2^(e + j/35) <= v < 2^(e + (j+1)/35): the integer mapping reproduces the
 * real-valued logarithmic buckets with no rounding at all.
 *
 * To find j without a search, the 6 bits below the leading one split the
 * octave into 64 cells of relative width at most 1/64 = 0.0156 < gamma - 1,
 * so each cell contains at most one threshold.  cell_start[c] is the j of
 * the first value of cell c; the value's j is that or one more, decided by
 * a single comparison with the next threshold.  The thresholds were computed
 * with exact integer arithmetic (T^35 >= 2^(63*35 + j) > (T-1)^35), and the
 * unit test checks the resulting bucket bounds the same way.
 *
 * Error bound
 * -----------
 *
 * The integers of bucket g are [lo, hi) with lo = ceil(2^(g/35)) and
 * hi = ceil(2^((g+1)/35)); qsketch_bucket_lower computes lo exactly from
 * T[j], as ceil(ceil(x) / 2^s) = ceil(x / 2^s).  The representative is the
 * harmonic mean r = 2 lo hi / (lo + hi), rounded to an integer.  For x in
 * [lo, hi):
 *
 *	 if x <= r:  (r - x) / x <= (r - lo) / lo = (hi - lo) / (hi + lo)
 *	 if x >= r:  (x - r) / x <= (hi - r) / hi = (hi - lo) / (hi + lo)
 *
 * so the relative error is at most (rho - 1) / (rho + 1) with rho = hi / lo.
 * As hi < 2^((g+1)/35) + 1 and lo >= 2^(g/35), rho < gamma + 1/lo, and
 * lo >= QSKETCH_LOG_LOW = 988092 gives rho < gamma + 1.02e-6.  With gamma,
 * (gamma - 1) / (gamma + 1) = 0.0099018; the extra 1.02e-6 adds at most
 * 0.0000005, and rounding r to an integer adds at most 0.5 / lo < 0.0000006,
 * for a total below QSKETCH_ERROR_BOUND = 0.009903 < 1%.  (The few double
 * roundings in computing r are of order 1e-16 and do not matter.)
 *
 * Quantiles
 * ---------
 *
 * The bucket index is a non-decreasing function of the value, so listing
 * the buckets in index order lists the values in sorted order: the element
 * of rank r (0-based) is in the first bucket whose cumulative count exceeds
 * r.  The estimate is that bucket's representative, within the bound above
 * of the true value.  It is then clamped into [min, max]; since the true
 * value lies in that interval (min and max are exact or valid bounds),
 * clamping can only move the estimate closer.
 *
 * The low bucket [0, QSKETCH_LOG_LOW) and the high bucket
 * [QSKETCH_LOG_HIGH, INT64_MAX] have no bounded ratio.  A quantile in the
 * low bucket is reported as min, a lower bound of the true value (exact for
 * a run of zero durations, and always less than one second off); one in the
 * high bucket as max, an upper bound.  Log buckets all the way up to
 * INT64_MAX would take 525 more counters (4.2 kB), beyond the size budget.
 *
 * min, max and removal
 * --------------------
 *
 * min and max are exact while only add and merge are used, which makes
 * q = 0 and q = 1 exact.  Removing a value equal to min may remove the only
 * copy, and the sketch cannot tell; min then becomes a lower bound (flag
 * QSKETCH_MIN_IS_BOUND), raised to the lower end of the lowest non-empty
 * bucket when that is higher.  Both are valid bounds: every remaining value
 * was >= the old min and lies in a non-empty bucket.  A bound min always
 * lies in the lowest non-empty bucket, as an exact one does.  The same holds
 * for max.  While min is a bound, q = 0 is estimated from the buckets like
 * any other quantile, so a moving window still gets 1% relative error for
 * all q; adding a value <= a bound min makes min exact again.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <string.h>

#include "qsketch.h"

/* The header fields pack into 32 bytes, so the struct has no padding. */
typedef char qsketch_size_check[(sizeof(QSketch) ==
								 32 + QSKETCH_NBUCKETS * sizeof(uint64_t)) ? 1 : -1];

/* T[j] = ceil(2^(63 + j/35)), and a sentinel no normalized value reaches */
static const uint64_t qsketch_thresholds[QSKETCH_SUBBUCKETS + 1] = {
	UINT64_C(0x8000000000000000), UINT64_C(0x828f69a92a6bd402),
	UINT64_C(0x852bef4e0b5e38bc), UINT64_C(0x87d5d40ea72ef913),
	UINT64_C(0x8a8d5c62b775133f), UINT64_C(0x8d52ce208af3eb23),
	UINT64_C(0x9026708408bc0932), UINT64_C(0x93088c35d733a4b6),
	UINT64_C(0x95f96b52a7bed348), UINT64_C(0x98f95972a7c2e49f),
	UINT64_C(0x9c08a3b117c43215), UINT64_C(0x9f2798b409617cbd),
	UINT64_C(0xa25688b444f3dbd0), UINT64_C(0xa595c585579e3855),
	UINT64_C(0xa8e5a29dca9b622c), UINT64_C(0xac46751f849deee5),
	UINT64_C(0xafb893e056194c24), UINT64_C(0xb33c5772b14fbe47),
	UINT64_C(0xb6d21a2e8f056939), UINT64_C(0xba7a383a80bcfcbc),
	UINT64_C(0xbe350f94f1673025), UINT64_C(0xc203001d9572e35d),
	UINT64_C(0xc5e46b9f0b307cd0), UINT64_C(0xc9d9b5d8ac7ff620),
	UINT64_C(0xcde3448892c5fc7e), UINT64_C(0xd2017f75ce2995d4),
	UINT64_C(0xd634d07ad120e231), UINT64_C(0xda7da3901158d184),
	UINT64_C(0xdedc66d6df09010b), UINT64_C(0xe3518aa473ca6ae3),
	UINT64_C(0xe7dd818d3a0d24f8), UINT64_C(0xec80c0704e4f1c07),
	UINT64_C(0xf13bbe833b3b83db), UINT64_C(0xf60ef55df1e0a045),
	UINT64_C(0xfafae106ff2f92bd), UINT64_C(0xffffffffffffffff)
};

/*
 * cell_start[c]: the j of the first normalized value of cell c, that is the
 * number of thresholds T[1..34] <= 2^63 + c * 2^57.
 */
static const uint8_t qsketch_cell_start[64] = {
	0, 0, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, 8, 9, 9, 10,
	11, 11, 12, 13, 13, 14, 14, 15, 16, 16, 17, 17, 18, 18, 19, 19,
	20, 20, 21, 22, 22, 23, 23, 24, 24, 24, 25, 25, 26, 26, 27, 27,
	28, 28, 29, 29, 30, 30, 30, 31, 31, 32, 32, 32, 33, 33, 34, 34
};

/*
 * Position of the most significant one bit of a non-zero word.
 */
static inline int
qsketch_leftmost_one_pos64(uint64_t word)
{
#if defined(__GNUC__) || defined(__clang__)
	return 63 - __builtin_clzll((unsigned long long) word);
#else
	int			pos = 0;

	if (word >> 32)
	{
		word >>= 32;
		pos += 32;
	}
	if (word >> 16)
	{
		word >>= 16;
		pos += 16;
	}
	if (word >> 8)
	{
		word >>= 8;
		pos += 8;
	}
	if (word >> 4)
	{
		word >>= 4;
		pos += 4;
	}
	if (word >> 2)
	{
		word >>= 2;
		pos += 2;
	}
	if (word >> 1)
		pos += 1;
	return pos;
#endif
}

/*
 * qsketch_bucket_index
 *		The bucket of a value >= 0 (negative values go to the low bucket,
 *		though the sketch itself never stores one).
 */
int
qsketch_bucket_index(int64_t v)
{
	uint64_t	m;
	int			e;
	int			j;

	/* also keeps 0 away from the leading-bit computation */
	if (v < QSKETCH_LOG_LOW)
		return QSKETCH_LOW_BUCKET;
	if (v >= QSKETCH_LOG_HIGH)
		return QSKETCH_HIGH_BUCKET;

	e = qsketch_leftmost_one_pos64((uint64_t) v);
	m = (uint64_t) v << (63 - e);
	j = qsketch_cell_start[(m >> 57) & 63];
	if (m >= qsketch_thresholds[j + 1])
		j++;

	return QSKETCH_SUBBUCKETS * e + j - QSKETCH_GRID_OFFSET;
}

/*
 * qsketch_bucket_lower
 *		The smallest value of a bucket, exactly ceil(2^(g/35)) for a log
 *		bucket; 0 for the low bucket.  Indexes out of range are clamped.
 */
int64_t
qsketch_bucket_lower(int index)
{
	int			g;
	int			shift;

	if (index <= QSKETCH_LOW_BUCKET)
		return 0;
	if (index >= QSKETCH_HIGH_BUCKET)
		return QSKETCH_LOG_HIGH;

	g = index + QSKETCH_GRID_OFFSET;
	shift = 63 - g / QSKETCH_SUBBUCKETS;

	/*
	 * ceil(T / 2^shift).  T + 2^shift - 1 cannot overflow: T[34] is 3.6e17
	 * below 2^64 and shift <= 63 - 19.
	 */
	return (int64_t) ((qsketch_thresholds[g % QSKETCH_SUBBUCKETS] +
					   ((UINT64_C(1) << shift) - 1)) >> shift);
}

/*
 * qsketch_bucket_upper
 *		The largest value of a bucket (inclusive); INT64_MAX for the high
 *		bucket.
 */
int64_t
qsketch_bucket_upper(int index)
{
	if (index >= QSKETCH_HIGH_BUCKET)
		return INT64_MAX;
	if (index < QSKETCH_LOW_BUCKET)
		index = QSKETCH_LOW_BUCKET;
	return qsketch_bucket_lower(index + 1) - 1;
}

/*
 * qsketch_bucket_value
 *		The representative value of a log bucket: the harmonic mean of its
 *		ends, which balances the relative error at both ends (see the file
 *		header).  For the low and high buckets, which have none, returns
 *		their lower end.
 */
int64_t
qsketch_bucket_value(int index)
{
	double		lo;
	double		hi;

	if (index <= QSKETCH_LOW_BUCKET || index >= QSKETCH_HIGH_BUCKET)
		return qsketch_bucket_lower(index);

	/* both below 2^49, so exact as doubles */
	lo = (double) qsketch_bucket_lower(index);
	hi = (double) qsketch_bucket_lower(index + 1);
	return (int64_t) llround(2.0 * lo * hi / (lo + hi));
}

/*
 * qsketch_init
 *		Makes an empty sketch.  Every byte is set, so sketches can be
 *		compared with memcmp.
 */
void
qsketch_init(QSketch *s)
{
	memset(s, 0, sizeof(QSketch));
	s->version = QSKETCH_VERSION;
}

/*
 * qsketch_add
 *		Adds one value.  Returns false, leaving the sketch unchanged, if the
 *		value is negative or the count would overflow.
 */
bool
qsketch_add(QSketch *s, int64_t v)
{
	/* every bucket is <= count, so checking count covers them too */
	if (v < 0 || s->count == UINT64_MAX)
		return false;

	if (s->count == 0)
	{
		s->min = v;
		s->max = v;
	}
	else
	{
		/* v <= a bound min is below every other value: an exact min */
		if (v <= s->min)
		{
			s->min = v;
			s->flags &= ~QSKETCH_MIN_IS_BOUND;
		}
		if (v >= s->max)
		{
			s->max = v;
			s->flags &= ~QSKETCH_MAX_IS_BOUND;
		}
	}
	s->count++;
	s->buckets[qsketch_bucket_index(v)]++;
	return true;
}

/*
 * qsketch_remove
 *		Removes one value previously added (the inverse transition of a
 *		moving-window aggregate).  Returns false, leaving the sketch
 *		unchanged, if the value cannot be in the sketch: negative, outside
 *		[min, max], or in an empty bucket.  A value that is absent but shares
 *		a bucket with present values cannot be detected; removing it removes
 *		one of them instead, as far as the buckets are concerned.
 *
 * The buckets and count then equal those of the sketch of the remaining
 * values.  Removing min (max) turns min (max) into a bound, as explained in
 * the file header.  Removing the last value gives an empty sketch.
 */
bool
qsketch_remove(QSketch *s, int64_t v)
{
	int			index;
	int			k;

	if (v < 0 || s->count == 0 || v < s->min || v > s->max)
		return false;
	index = qsketch_bucket_index(v);
	if (s->buckets[index] == 0)
		return false;

	s->buckets[index]--;
	s->count--;
	if (s->count == 0)
	{
		qsketch_init(s);
		return true;
	}

	/*
	 * Emptying min's bucket without removing min can only happen when the
	 * caller removes an absent value; recomputing the bound then keeps the
	 * invariant that min lies in the lowest non-empty bucket.
	 */
	if (v == s->min ||
		(s->buckets[index] == 0 && index == qsketch_bucket_index(s->min)))
	{
		/* the buckets below min's bucket are empty, so start there */
		for (k = index; k < QSKETCH_HIGH_BUCKET && s->buckets[k] == 0; k++)
			;
		if (qsketch_bucket_lower(k) > s->min)
			s->min = qsketch_bucket_lower(k);
		s->flags |= QSKETCH_MIN_IS_BOUND;
	}
	if (v == s->max ||
		(s->buckets[index] == 0 && index == qsketch_bucket_index(s->max)))
	{
		for (k = index; k > QSKETCH_LOW_BUCKET && s->buckets[k] == 0; k--)
			;
		if (qsketch_bucket_upper(k) < s->max)
			s->max = qsketch_bucket_upper(k);
		s->flags |= QSKETCH_MAX_IS_BOUND;
	}
	return true;
}

/*
 * qsketch_merge
 *		Adds src into dst.  The result equals the sketch of the union of the
 *		two multisets.  Returns false, leaving dst unchanged, if the count
 *		would overflow.
 */
bool
qsketch_merge(QSketch *dst, const QSketch *src)
{
	int			k;

	if (src->count == 0)
		return true;
	if (dst->count == 0)
	{
		memcpy(dst, src, sizeof(QSketch));
		return true;
	}
	/* buckets are <= their count, so they cannot overflow either */
	if (dst->count > UINT64_MAX - src->count)
		return false;

	/*
	 * The smaller min wins; on a tie the union's min is exact if either
	 * side's is, since an exact side holds that value.
	 */
	if (src->min < dst->min)
	{
		dst->min = src->min;
		dst->flags = (dst->flags & ~QSKETCH_MIN_IS_BOUND) |
			(src->flags & QSKETCH_MIN_IS_BOUND);
	}
	else if (src->min == dst->min)
		dst->flags &= src->flags | ~QSKETCH_MIN_IS_BOUND;

	if (src->max > dst->max)
	{
		dst->max = src->max;
		dst->flags = (dst->flags & ~QSKETCH_MAX_IS_BOUND) |
			(src->flags & QSKETCH_MAX_IS_BOUND);
	}
	else if (src->max == dst->max)
		dst->flags &= src->flags | ~QSKETCH_MAX_IS_BOUND;

	dst->count += src->count;
	for (k = 0; k < QSKETCH_NBUCKETS; k++)
		dst->buckets[k] += src->buckets[k];
	return true;
}

/*
 * qsketch_rank
 *		The rank floor(q * (n - 1)) of the lower q-quantile of n >= 1 values,
 *		computed in double as the definition reads, and kept in [0, n - 1]
 *		even where n - 1 does not convert to double exactly.
 */
static uint64_t
qsketch_rank(uint64_t n, double q)
{
	double		last = (double) (n - 1);
	double		pos;
	uint64_t	rank;

	/* written so that NaN gives rank 0 */
	if (!(q > 0.0))
		return 0;
	if (q >= 1.0)
		return n - 1;
	pos = q * last;
	if (pos >= last)
		return n - 1;
	/* 0 <= pos < 2^64 here, so the conversion is defined */
	rank = (uint64_t) pos;
	return rank < n - 1 ? rank : n - 1;
}

/*
 * qsketch_quantile
 *		Estimates the lower q-quantile, the element of rank
 *		floor(q * (count - 1)) in sorted order, in microseconds.  The caller
 *		guarantees count > 0 and 0 <= q <= 1 (an empty sketch gives 0).
 *
 * When the true value lies in [QSKETCH_LOG_LOW, QSKETCH_LOG_HIGH) the
 * estimate is within QSKETCH_ERROR_BOUND relative error; when it lies below
 * (above), the estimate is min (max).  With exact min and max, q = 0 and
 * q = 1 return them.  Every estimate lies in [min, max].
 */
int64_t
qsketch_quantile(const QSketch *s, double q)
{
	uint64_t	rank;
	uint64_t	below = 0;
	int64_t		estimate;
	int			k;

	if (s->count == 0)
		return 0;

	rank = qsketch_rank(s->count, q);
	if (rank == 0 && !(s->flags & QSKETCH_MIN_IS_BOUND))
		return s->min;
	if (rank == s->count - 1 && !(s->flags & QSKETCH_MAX_IS_BOUND))
		return s->max;

	/* below counts the values in earlier buckets and stays <= rank */
	for (k = 0; k < QSKETCH_NBUCKETS; k++)
	{
		if (s->buckets[k] > rank - below)
			break;
		below += s->buckets[k];
	}

	/* k == QSKETCH_NBUCKETS only for a sketch that fails validation */
	if (k == QSKETCH_LOW_BUCKET)
		return s->min;
	if (k >= QSKETCH_HIGH_BUCKET)
		return s->max;

	estimate = qsketch_bucket_value(k);
	if (estimate < s->min)
		estimate = s->min;
	if (estimate > s->max)
		estimate = s->max;
	return estimate;
}

/*
 * qsketch_validate
 *		Checks that a sketch from untrusted input (binary or text) satisfies
 *		the invariants listed in qsketch.h, so that the other functions
 *		behave as documented on it.
 */
bool
qsketch_validate(const QSketch *s)
{
	uint64_t	sum = 0;
	int			lowest = -1;
	int			highest = -1;
	int			k;

	if (s->version != QSKETCH_VERSION || (s->flags & ~QSKETCH_FLAG_MASK) != 0)
		return false;

	if (s->count == 0)
	{
		/* the empty sketch has a single representation: qsketch_init's */
		if (s->flags != 0 || s->min != 0 || s->max != 0)
			return false;
		for (k = 0; k < QSKETCH_NBUCKETS; k++)
		{
			if (s->buckets[k] != 0)
				return false;
		}
		return true;
	}

	if (s->min < 0 || s->min > s->max)
		return false;

	for (k = 0; k < QSKETCH_NBUCKETS; k++)
	{
		if (s->buckets[k] == 0)
			continue;
		/* compare before adding, so a wrapped sum cannot pass */
		if (s->buckets[k] > s->count - sum)
			return false;
		sum += s->buckets[k];
		if (lowest < 0)
			lowest = k;
		highest = k;
	}
	if (sum != s->count)
		return false;

	if (qsketch_bucket_index(s->min) != lowest ||
		qsketch_bucket_index(s->max) != highest)
		return false;

	/* a single value that is both exact min and exact max */
	if (s->count == 1 && s->flags == 0 && s->min != s->max)
		return false;

	return true;
}

/*
 * qsketch_next_bucket
 *		The index of the first non-empty bucket at or after start, storing
 *		its count in *count, or -1 if there is none.  Iterate with
 *
 *		for (k = qsketch_next_bucket(s, 0, &c); k >= 0;
 *			 k = qsketch_next_bucket(s, k + 1, &c))
 */
int
qsketch_next_bucket(const QSketch *s, int start, uint64_t *count)
{
	int			k;

	for (k = start < 0 ? 0 : start; k < QSKETCH_NBUCKETS; k++)
	{
		if (s->buckets[k] != 0)
		{
			*count = s->buckets[k];
			return k;
		}
	}
	return -1;
}

/*
 * qsketch_set_bucket
 *		Sets one bucket's count, for reading a sketch back.  It does not
 *		touch count, min, max or flags: the reader sets those fields itself
 *		and then must call qsketch_validate.  Returns false if the index is
 *		out of range.
 */
bool
qsketch_set_bucket(QSketch *s, int index, uint64_t count)
{
	if (index < 0 || index >= QSKETCH_NBUCKETS)
		return false;
	s->buckets[index] = count;
	return true;
}
