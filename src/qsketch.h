/*-------------------------------------------------------------------------
 *
 * qsketch.h
 *	  Mergeable quantile sketch for durations, with 1% relative error.
 *
 * A QSketch summarizes a multiset of durations, given in microseconds as
 * non-negative int64 values, so that any quantile can be estimated within
 * 1% relative error whenever the true quantile lies between one second and
 * ten years (3652.5 days).  It is a fixed grid of logarithmic buckets in the
 * manner of DDSketch (Masson, Rim, Lee, VLDB 2019), with 35 buckets per
 * power of two, so bucket k covers [2^(g/35), 2^((g+1)/35)) for grid
 * position g = k + QSKETCH_GRID_OFFSET.  Every value in a bucket is within
 * 0.9903% of the bucket's representative value; qsketch.c has the proof.
 *
 * Bucket indexes run from 0 to QSKETCH_NBUCKETS - 1:
 *
 *	 0								values below QSKETCH_LOG_LOW (~0.988 s)
 *	 1 .. QSKETCH_NBUCKETS - 2		logarithmic buckets
 *	 QSKETCH_NBUCKETS - 1			values from QSKETCH_LOG_HIGH (~10.04 years)
 *
 * Values outside the logarithmic buckets are accepted and counted, and
 * their ranks are exact, but they carry no relative-error guarantee: a
 * quantile that falls in the low bucket is reported as the minimum, and
 * one that falls in the high bucket as the maximum (see qsketch_quantile).
 *
 * The struct is flat and pointer-free, 7960 bytes, so the fmgr wrapper can
 * keep it directly in a varlena value and update it in place.  It must be
 * 8-byte aligned: embed it as a member of the wrapper's struct (after the
 * int32 vl_len_ field the compiler pads to 8) and give the SQL type
 * ALIGNMENT = double.
 *
 * The count and the bucket counters are uint64; operations that would
 * overflow them fail and leave the sketch unchanged.  Nothing here
 * allocates memory or has global mutable state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_QSKETCH_H
#define SALES_KPI_QSKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* layout version stored in every sketch; qsketch_validate rejects others */
#define QSKETCH_VERSION		1

/* the range with the relative-error guarantee, in microseconds */
#define QSKETCH_RANGE_MIN	INT64_C(1000000)	/* 1 second */
#define QSKETCH_RANGE_MAX	INT64_C(315576000000000)	/* 3652.5 days */

/*
 * Guaranteed relative error of an estimate whose true value lies in a
 * logarithmic bucket, that is in [QSKETCH_LOG_LOW, QSKETCH_LOG_HIGH), which
 * contains [QSKETCH_RANGE_MIN, QSKETCH_RANGE_MAX].
 */
#define QSKETCH_ERROR_BOUND 0.009903

/* buckets per power of two: 2^(1/35) = 1.0200016 is the bucket ratio */
#define QSKETCH_SUBBUCKETS	35

/* log bucket k covers grid position k + QSKETCH_GRID_OFFSET */
#define QSKETCH_GRID_OFFSET 696

/* lowest value of the first log bucket: ceil(2^(697/35)) */
#define QSKETCH_LOG_LOW		INT64_C(988092)

/* lowest value of the high bucket: ceil(2^(1686/35)) */
#define QSKETCH_LOG_HIGH	INT64_C(316989541716345)

#define QSKETCH_NBUCKETS	991
#define QSKETCH_LOW_BUCKET	0
#define QSKETCH_HIGH_BUCKET (QSKETCH_NBUCKETS - 1)

/*
 * Flags.  Removing the minimum (or maximum) makes the stored min (max) a
 * bound rather than an exact value; see qsketch_remove.
 */
#define QSKETCH_MIN_IS_BOUND	0x0001
#define QSKETCH_MAX_IS_BOUND	0x0002
#define QSKETCH_FLAG_MASK		(QSKETCH_MIN_IS_BOUND | QSKETCH_MAX_IS_BOUND)

typedef struct QSketch
{
	uint32_t	version;		/* QSKETCH_VERSION */
	uint32_t	flags;			/* QSKETCH_*_IS_BOUND */
	uint64_t	count;			/* number of values; equals sum of buckets */
	int64_t		min;			/* smallest value, or a lower bound of it */
	int64_t		max;			/* largest value, or an upper bound of it */
	uint64_t	buckets[QSKETCH_NBUCKETS];
} QSketch;

/*
 * Invariants of a sketch with count > 0 (qsketch_validate checks them):
 * 0 <= min <= max; the sum of the buckets is count; min lies in the lowest
 * non-empty bucket and max in the highest; when neither flag is set and
 * count is 1, min == max.  An empty sketch is all zero apart from version.
 * The struct has no padding, so equal sketches compare equal with memcmp.
 */

extern void qsketch_init(QSketch *s);
extern bool qsketch_add(QSketch *s, int64_t v);
extern bool qsketch_remove(QSketch *s, int64_t v);
extern bool qsketch_merge(QSketch *dst, const QSketch *src);
extern int64_t qsketch_quantile(const QSketch *s, double q);
extern bool qsketch_validate(const QSketch *s);

/* bucket geometry, for the wrapper's text form and for tests */
extern int	qsketch_bucket_index(int64_t v);
extern int64_t qsketch_bucket_lower(int index);
extern int64_t qsketch_bucket_upper(int index);
extern int64_t qsketch_bucket_value(int index);

/* sparse access, for text and binary input/output */
extern int	qsketch_next_bucket(const QSketch *s, int start, uint64_t *count);
extern bool qsketch_set_bucket(QSketch *s, int index, uint64_t count);

#endif							/* SALES_KPI_QSKETCH_H */
