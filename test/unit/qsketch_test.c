/*-------------------------------------------------------------------------
 *
 * qsketch_test.c
 *	  Standalone unit tests of the duration quantile sketch (src/qsketch.c),
 *	  printing TAP.  Build and run with
 *
 *	  gcc -std=c99 -O2 -Wall -Wextra -Werror -I/work/main/src \
 *		  /work/main/test/unit/qsketch_test.c /work/main/src/qsketch.c -lm \
 *		  -o /tmp/qsketch_test && /tmp/qsketch_test
 *
 *	  Exits non-zero if any test fails.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsketch.h"

#define NTESTS 77

static int	tests_run = 0;
static int	tests_failed = 0;

/* largest relative error seen by any in-range check, for the report */
static double max_seen_error = 0.0;

static const double quantiles[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1};
#define NQUANTILES ((int) (sizeof(quantiles) / sizeof(quantiles[0])))

static void
ok(bool passed, const char *fmt,...)
{
	va_list		ap;

	tests_run++;
	if (!passed)
		tests_failed++;
	printf("%sok %d - ", passed ? "" : "not ", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Diagnostics go to stdout as TAP comments; only the first few per test. */
static int	diag_budget;

static void
diag(const char *fmt,...)
{
	va_list		ap;

	if (diag_budget <= 0)
		return;
	diag_budget--;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---------------------------------------------------------------------
 * Seeded PRNG (splitmix64) and data sets
 * ---------------------------------------------------------------------
 */
typedef struct Rng
{
	uint64_t	state;
} Rng;

static uint64_t
rng_next(Rng *r)
{
	uint64_t	z = (r->state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double
rng_unit(Rng *r)
{
	return (double) (rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform integer in [lo, hi] */
static int64_t
rng_range(Rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t) (rng_next(r) % ((uint64_t) (hi - lo) + 1));
}

/* log-uniform integer in [lo, hi], lo >= 1 */
static int64_t
rng_log(Rng *r, double lo, double hi)
{
	double		x = exp(log(lo) + rng_unit(r) * (log(hi) - log(lo)));

	if (x < lo)
		x = lo;
	if (x > hi)
		x = hi;
	return (int64_t) llround(x);
}

typedef enum Dist
{
	DIST_UNIFORM,
	DIST_LOGUNIFORM,
	DIST_PARETO,
	DIST_TIES,
	DIST_MIXED,
	DIST_EDGES,
	NDISTS
} Dist;

static const char *const dist_names[NDISTS] = {
	"uniform", "log-uniform", "pareto", "ties", "mixed", "bucket-edges"
};

static int64_t
draw(Rng *r, Dist dist)
{
	static const int64_t ties[] = {
		0, 500000, 1000000, INT64_C(3600000000), INT64_C(86400000000),
		INT64_C(2592000000000), QSKETCH_RANGE_MAX
	};
	double		u;

	switch (dist)
	{
		case DIST_UNIFORM:
			return rng_range(r, QSKETCH_RANGE_MIN, QSKETCH_RANGE_MAX);
		case DIST_LOGUNIFORM:
			return rng_log(r, (double) QSKETCH_RANGE_MIN,
						   (double) QSKETCH_RANGE_MAX);
		case DIST_PARETO:
			/* x_m = 1 s, shape 1.16 (the "80/20" tail); some beyond 10 y */
			u = rng_unit(r);
			{
				double		x = 1e6 / pow(1.0 - u, 1.0 / 1.16);

				return x > 1e18 ? INT64_C(1000000000000000000) : (int64_t) x;
			}
		case DIST_TIES:
			return ties[rng_next(r) % 7];
		case DIST_MIXED:
			u = rng_unit(r);
			if (u < 0.15)
				return 0;
			if (u < 0.30)
				return rng_range(r, 1, QSKETCH_LOG_LOW - 1);
			if (u < 0.90)
				return rng_log(r, (double) QSKETCH_RANGE_MIN,
							   (double) QSKETCH_RANGE_MAX);
			return rng_log(r, (double) QSKETCH_RANGE_MAX, 1e18);
		case DIST_EDGES:
			return qsketch_bucket_lower((int) rng_range(r, 1, QSKETCH_HIGH_BUCKET)) +
				rng_range(r, -1, 1);
		default:
			abort();
	}
}

static int64_t *
make_data(Dist dist, size_t n, uint64_t seed)
{
	int64_t    *data = malloc(n * sizeof(int64_t) + 1);
	Rng			r = {seed};
	size_t		i;

	if (data == NULL)
		abort();
	for (i = 0; i < n; i++)
		data[i] = draw(&r, dist);
	return data;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

static int64_t *
sorted_copy(const int64_t *data, size_t n)
{
	int64_t    *copy = malloc(n * sizeof(int64_t) + 1);

	if (copy == NULL)
		abort();
	memcpy(copy, data, n * sizeof(int64_t));
	qsort(copy, n, sizeof(int64_t), cmp_int64);
	return copy;
}

static void
build(QSketch *s, const int64_t *data, size_t n)
{
	size_t		i;

	qsketch_init(s);
	for (i = 0; i < n; i++)
	{
		if (!qsketch_add(s, data[i]))
			abort();
	}
}

static double
rel_error(int64_t estimate, int64_t truth)
{
	return fabs((double) estimate - (double) truth) / (double) truth;
}

/* ---------------------------------------------------------------------
 * Checking estimates against the exact lower quantile
 * ---------------------------------------------------------------------
 */

/*
 * Checks every quantile of s against sorted[0..n-1], the values it should
 * summarize, as documented in qsketch.h: exact q = 0 and q = 1 while min and
 * max are exact; QSKETCH_ERROR_BOUND (< 1%) when the true value is in a log
 * bucket (which covers [1 s, 10 y]); min below, max above; always within
 * [min, max], and min and max valid bounds.
 */
static bool
check_quantiles(const QSketch *s, const int64_t *sorted, size_t n)
{
	bool		good = true;
	int			i;

	if (s->count != n || !qsketch_validate(s))
	{
		diag("count %llu, expected %zu, or invalid",
			 (unsigned long long) s->count, n);
		return false;
	}
	if (s->min > sorted[0] || s->max < sorted[n - 1] ||
		(!(s->flags & QSKETCH_MIN_IS_BOUND) && s->min != sorted[0]) ||
		(!(s->flags & QSKETCH_MAX_IS_BOUND) && s->max != sorted[n - 1]))
	{
		diag("bad min/max %lld/%lld for data %lld..%lld",
			 (long long) s->min, (long long) s->max,
			 (long long) sorted[0], (long long) sorted[n - 1]);
		good = false;
	}

	for (i = 0; i < NQUANTILES; i++)
	{
		double		q = quantiles[i];
		size_t		rank = (size_t) floor(q * (double) (n - 1));
		int64_t		truth = sorted[rank];
		int64_t		est = qsketch_quantile(s, q);
		bool		pass;

		if (est < s->min || est > s->max)
			pass = false;
		else if (rank == 0 && !(s->flags & QSKETCH_MIN_IS_BOUND))
			pass = (est == truth);
		else if (rank == n - 1 && !(s->flags & QSKETCH_MAX_IS_BOUND))
			pass = (est == truth);
		else if (truth >= QSKETCH_LOG_LOW && truth < QSKETCH_LOG_HIGH)
		{
			double		err = rel_error(est, truth);

			if (err > max_seen_error)
				max_seen_error = err;
			pass = (err <= QSKETCH_ERROR_BOUND);
		}
		else if (truth < QSKETCH_LOG_LOW)
			pass = (est == s->min && est <= truth);
		else
			pass = (est == s->max && est >= truth);

		if (!pass)
		{
			diag("q=%g n=%zu rank=%zu: true %lld, estimate %lld (min %lld max %lld flags %u)",
				 q, n, rank, (long long) truth, (long long) est,
				 (long long) s->min, (long long) s->max, s->flags);
			good = false;
		}
	}
	return good;
}

/* ---------------------------------------------------------------------
 * Bucket geometry
 * ---------------------------------------------------------------------
 */

/*
 * Index of the highest one bit of x^35, for 0 < x < 2^50, computed exactly
 * in base 256 (a limb times x stays below 2^58).
 */
static int
pow35_top_bit(uint64_t x)
{
	uint8_t		limb[256];
	int			len = 1;
	int			i;
	int			j;
	int			bit;

	memset(limb, 0, sizeof(limb));
	limb[0] = 1;
	for (i = 0; i < QSKETCH_SUBBUCKETS; i++)
	{
		uint64_t	carry = 0;

		for (j = 0; j < len; j++)
		{
			uint64_t	t = (uint64_t) limb[j] * x + carry;

			limb[j] = (uint8_t) (t & 0xff);
			carry = t >> 8;
		}
		while (carry != 0)
		{
			limb[len++] = (uint8_t) (carry & 0xff);
			carry >>= 8;
		}
	}
	for (bit = 7; !(limb[len - 1] >> bit); bit--)
		;
	return (len - 1) * 8 + bit;
}

static void
test_exact_bounds(void)
{
	bool		good = true;
	int			k;

	diag_budget = 5;

	/*
	 * lo = ceil(2^(g/35)) iff lo^35 >= 2^g > (lo-1)^35, that is iff the top
	 * bit of lo^35 is >= g and that of (lo-1)^35 is < g.
	 */
	for (k = 1; k <= QSKETCH_HIGH_BUCKET; k++)
	{
		int			g = k + QSKETCH_GRID_OFFSET;
		int64_t		lo = qsketch_bucket_lower(k);

		if (pow35_top_bit((uint64_t) lo) < g ||
			pow35_top_bit((uint64_t) lo - 1) >= g)
		{
			diag("bucket %d: lower %lld is not ceil(2^(%d/35))",
				 k, (long long) lo, g);
			good = false;
		}
	}
	good = good && qsketch_bucket_lower(1) == QSKETCH_LOG_LOW &&
		qsketch_bucket_lower(QSKETCH_HIGH_BUCKET) == QSKETCH_LOG_HIGH &&
		QSKETCH_LOG_LOW <= QSKETCH_RANGE_MIN &&
		QSKETCH_LOG_HIGH > QSKETCH_RANGE_MAX &&
		qsketch_bucket_lower(QSKETCH_HIGH_BUCKET) - 1 ==
		qsketch_bucket_upper(QSKETCH_HIGH_BUCKET - 1);
	ok(good, "bucket lower ends are exactly ceil(2^(g/35)) and cover [1 s, 10 y]");
}

static void
test_bucket_edges(void)
{
	bool		good = true;
	int			k;

	diag_budget = 5;
	for (k = 1; k <= QSKETCH_HIGH_BUCKET; k++)
	{
		int64_t		lo = qsketch_bucket_lower(k);

		if (qsketch_bucket_index(lo) != k ||
			qsketch_bucket_index(lo - 1) != k - 1 ||
			qsketch_bucket_upper(k - 1) != lo - 1 ||
			qsketch_bucket_lower(k - 1) >= lo)
		{
			diag("edge of bucket %d at %lld maps wrongly", k, (long long) lo);
			good = false;
		}
	}
	good = good && qsketch_bucket_index(0) == QSKETCH_LOW_BUCKET &&
		qsketch_bucket_index(-5) == QSKETCH_LOW_BUCKET &&
		qsketch_bucket_index(INT64_MAX) == QSKETCH_HIGH_BUCKET &&
		qsketch_bucket_upper(QSKETCH_HIGH_BUCKET) == INT64_MAX;
	ok(good, "every bucket edge maps to the right bucket");
}

static int64_t reps[QSKETCH_NBUCKETS];

/* checks v against the representative of its bucket */
static bool
check_value(int64_t v)
{
	int			k = qsketch_bucket_index(v);
	double		err;

	if (k < 1 || k >= QSKETCH_HIGH_BUCKET ||
		v < qsketch_bucket_lower(k) || v > qsketch_bucket_upper(k))
		return false;
	err = rel_error(reps[k], v);
	if (err > max_seen_error)
		max_seen_error = err;
	return err <= QSKETCH_ERROR_BOUND && err < 0.01;
}

static void
test_exhaustive_low_octaves(void)
{
	const int64_t limit = INT64_C(1) << 26;
	int			prev = 0;
	int64_t		v;
	bool		good = true;

	diag_budget = 5;
	for (v = 0; v <= limit; v++)
	{
		int			k = qsketch_bucket_index(v);

		/* non-decreasing, one step at a time */
		if (k != prev && k != prev + 1)
		{
			diag("index jumps from %d to %d at %lld", prev, k, (long long) v);
			good = false;
		}
		prev = k;
		if (v >= QSKETCH_LOG_LOW)
		{
			double		err = rel_error(reps[k], v);

			if (err > max_seen_error)
				max_seen_error = err;
			if (err > QSKETCH_ERROR_BOUND)
			{
				diag("value %lld: representative %lld off by %.6f",
					 (long long) v, (long long) reps[k], err);
				good = false;
			}
		}
		else if (k != QSKETCH_LOW_BUCKET)
			good = false;
	}
	ok(good, "exhaustive: all integers in [0, 2^26] map monotonically, within %.4f%% of their representative",
	   100.0 * QSKETCH_ERROR_BOUND);
}

static void
test_sweep(void)
{
	double		x;
	long		checked = 0;
	bool		good = true;
	int			k;
	int			d;

	diag_budget = 5;

	/* geometric steps of one part per million across the log buckets */
	for (x = (double) QSKETCH_LOG_LOW; x < (double) QSKETCH_LOG_HIGH; x *= 1.000001)
	{
		if (!check_value((int64_t) x))
		{
			diag("value %lld fails", (long long) x);
			good = false;
		}
		checked++;
	}
	/* and every integer within 64 of every edge */
	for (k = 1; k <= QSKETCH_HIGH_BUCKET; k++)
	{
		int64_t		lo = qsketch_bucket_lower(k);

		for (d = -64; d <= 64; d++)
		{
			int64_t		v = lo + d;

			if (v < QSKETCH_LOG_LOW || v >= QSKETCH_LOG_HIGH)
				continue;
			if (!check_value(v))
			{
				diag("value %lld fails", (long long) v);
				good = false;
			}
			checked++;
		}
	}
	ok(good, "sweep of %ld values from %lld to %lld: all within 1%% of their representative",
	   checked, (long long) QSKETCH_LOG_LOW, (long long) QSKETCH_LOG_HIGH);
}

static void
test_bucket_extremes(void)
{
	double		worst = 0.0;
	int			worst_k = 0;
	bool		good = true;
	int			k;

	/*
	 * The relative error within a bucket is largest at its ends (see the
	 * proof in qsketch.c), so these checks cover every integer.
	 */
	for (k = 1; k < QSKETCH_HIGH_BUCKET; k++)
	{
		double		e1 = rel_error(reps[k], qsketch_bucket_lower(k));
		double		e2 = rel_error(reps[k], qsketch_bucket_upper(k));
		double		e = e1 > e2 ? e1 : e2;

		if (e > worst)
		{
			worst = e;
			worst_k = k;
		}
		if (!(reps[k] > qsketch_bucket_lower(k) && reps[k] < qsketch_bucket_upper(k)))
			good = false;
	}
	printf("# worst relative error over all %d log buckets: %.7f (bucket %d)\n",
		   QSKETCH_NBUCKETS - 2, worst, worst_k);
	ok(good && worst <= QSKETCH_ERROR_BOUND,
	   "bucket ends are within %.4f%% of the representative in every log bucket",
	   100.0 * QSKETCH_ERROR_BOUND);
}

static void
test_layout(void)
{
	printf("# sizeof(QSketch) = %zu bytes, %d buckets\n",
		   sizeof(QSketch), QSKETCH_NBUCKETS);
	ok(sizeof(QSketch) == 7960 && sizeof(QSketch) <= 8192 &&
	   offsetof(QSketch, buckets) == 32,
	   "flat struct of 7960 bytes, no padding");
}

/* ---------------------------------------------------------------------
 * Quantiles of data sets
 * ---------------------------------------------------------------------
 */
static void
test_datasets(void)
{
	static const size_t sizes[] = {1, 2, 3, 1000, 100003, 1000000};
	int			d;
	int			i;

	for (d = 0; d < NDISTS; d++)
	{
		for (i = 0; i < (int) (sizeof(sizes) / sizeof(sizes[0])); i++)
		{
			size_t		n = sizes[i];
			int64_t    *data = make_data((Dist) d, n, 1000 * d + i + 1);
			int64_t    *sorted = sorted_copy(data, n);
			QSketch		s;

			diag_budget = 5;
			build(&s, data, n);
			ok(check_quantiles(&s, sorted, n) && s.flags == 0,
			   "quantiles of %s data, n=%zu", dist_names[d], n);
			free(data);
			free(sorted);
		}
	}
}

static void
test_extreme_values(void)
{
	QSketch		s;
	int64_t		sorted[4] = {0, 0, INT64_MAX, INT64_MAX};
	bool		good;

	diag_budget = 5;
	qsketch_init(&s);
	good = qsketch_add(&s, INT64_MAX) && qsketch_add(&s, 0) &&
		qsketch_add(&s, INT64_MAX) && qsketch_add(&s, 0);
	good = good && check_quantiles(&s, sorted, 4) &&
		qsketch_quantile(&s, 0.0) == 0 &&
		qsketch_quantile(&s, 1.0) == INT64_MAX;
	ok(good, "values 0 and INT64_MAX are accepted and exact at q=0 and q=1");
}

static void
test_add_rejects(void)
{
	QSketch		s;
	QSketch		copy;
	bool		good;

	qsketch_init(&s);
	qsketch_add(&s, 5000000);
	memcpy(&copy, &s, sizeof(QSketch));
	good = !qsketch_add(&s, -1) && !qsketch_add(&s, INT64_MIN) &&
		memcmp(&s, &copy, sizeof(QSketch)) == 0;

	/* a sketch already holding 2^64 - 1 values */
	s.count = UINT64_MAX;
	s.buckets[qsketch_bucket_index(5000000)] = UINT64_MAX;
	memcpy(&copy, &s, sizeof(QSketch));
	good = good && qsketch_validate(&s) && !qsketch_add(&s, 5000000) &&
		memcmp(&s, &copy, sizeof(QSketch)) == 0;
	ok(good, "add rejects negative values and count overflow, leaving the sketch unchanged");
}

static void
test_huge_count_quantile(void)
{
	QSketch		s;
	int			k1 = qsketch_bucket_index(2000000);
	int			k2 = qsketch_bucket_index(INT64_C(9000000000));
	bool		good;

	/* 2^64 - 1 values: ranks near the top stress the double conversion */
	qsketch_init(&s);
	s.count = UINT64_MAX;
	s.min = qsketch_bucket_lower(k1);
	s.max = qsketch_bucket_upper(k2);
	s.buckets[k1] = UINT64_MAX / 2;
	s.buckets[k2] = UINT64_MAX - UINT64_MAX / 2;
	good = qsketch_validate(&s) &&
		qsketch_quantile(&s, 0.0) == s.min &&
		qsketch_quantile(&s, 0.25) == qsketch_bucket_value(k1) &&
		qsketch_quantile(&s, 0.75) == qsketch_bucket_value(k2) &&
		qsketch_quantile(&s, 0.9999999999999999) == qsketch_bucket_value(k2) &&
		qsketch_quantile(&s, 1.0) == s.max;
	ok(good, "quantiles of a sketch holding 2^64-1 values");
}

/* ---------------------------------------------------------------------
 * Merge
 * ---------------------------------------------------------------------
 */
static void
test_merge_partitions(Dist dist, size_t n, int parts, uint64_t seed)
{
	int64_t    *data = make_data(dist, n, seed);
	QSketch    *part = malloc(parts * sizeof(QSketch));
	int		   *order = malloc(parts * sizeof(int));
	QSketch		whole;
	QSketch		merged;
	QSketch		tree;
	Rng			r = {seed ^ 0x5555};
	bool		good = true;
	size_t		i;
	int			p;
	int			step;

	if (part == NULL || order == NULL)
		abort();
	build(&whole, data, n);
	for (p = 0; p < parts; p++)
	{
		qsketch_init(&part[p]);
		order[p] = p;
	}
	/* part 0 stays empty; the others get arbitrary, uneven shares */
	for (i = 0; i < n; i++)
	{
		p = 1 + (int) (rng_next(&r) % (uint64_t) (parts - 1));
		if (rng_next(&r) % 4 == 0)
			p = 1;
		qsketch_add(&part[p], data[i]);
	}

	/* merge in a random order */
	for (p = parts - 1; p > 0; p--)
	{
		int			j = (int) (rng_next(&r) % (uint64_t) (p + 1));
		int			t = order[p];

		order[p] = order[j];
		order[j] = t;
	}
	qsketch_init(&merged);
	for (p = 0; p < parts; p++)
		good = good && qsketch_merge(&merged, &part[order[p]]);
	good = good && memcmp(&merged, &whole, sizeof(QSketch)) == 0;

	/* and pairwise, as a tree, which consumes the parts */
	for (step = 1; step < parts; step *= 2)
	{
		for (p = 0; p + step < parts; p += 2 * step)
			good = good && qsketch_merge(&part[p], &part[p + step]);
	}
	memcpy(&tree, &part[0], sizeof(QSketch));
	good = good && memcmp(&tree, &whole, sizeof(QSketch)) == 0 &&
		qsketch_validate(&merged);

	ok(good, "merge of %d partitions of %zu %s values equals the sketch of all of them",
	   parts, n, dist_names[dist]);
	free(data);
	free(part);
	free(order);
}

static void
test_merge_empty(void)
{
	int64_t    *data = make_data(DIST_MIXED, 1000, 77);
	QSketch		a;
	QSketch		b;
	QSketch		empty;
	bool		good;

	build(&a, data, 1000);
	memcpy(&b, &a, sizeof(QSketch));
	qsketch_init(&empty);
	good = qsketch_merge(&b, &empty) && memcmp(&a, &b, sizeof(QSketch)) == 0;
	good = good && qsketch_merge(&empty, &a) &&
		memcmp(&a, &empty, sizeof(QSketch)) == 0;
	qsketch_init(&b);
	qsketch_init(&empty);
	good = good && qsketch_merge(&b, &empty) &&
		memcmp(&b, &empty, sizeof(QSketch)) == 0 && qsketch_validate(&b);
	ok(good, "merge with an empty sketch on either side");
	free(data);
}

static void
test_merge_overflow(void)
{
	QSketch		a;
	QSketch		b;
	QSketch		copy;
	bool		good;

	qsketch_init(&a);
	qsketch_add(&a, 3000000);
	qsketch_init(&b);
	b.count = UINT64_MAX;
	b.min = b.max = 3000000;
	b.buckets[qsketch_bucket_index(3000000)] = UINT64_MAX;
	memcpy(&copy, &a, sizeof(QSketch));
	good = qsketch_validate(&b) && !qsketch_merge(&a, &b) &&
		memcmp(&a, &copy, sizeof(QSketch)) == 0;
	ok(good, "merge refuses to overflow the count and leaves dst unchanged");
}

static void
test_merge_bounds(void)
{
	QSketch		exact;
	QSketch		bounded;
	QSketch		m;
	bool		good;

	/* bounded: {2 s, 5 s, 9 s} minus 2 s and 9 s, so min and max are bounds */
	qsketch_init(&bounded);
	qsketch_add(&bounded, 2000000);
	qsketch_add(&bounded, 5000000);
	qsketch_add(&bounded, 9000000);
	good = qsketch_remove(&bounded, 2000000) && qsketch_remove(&bounded, 9000000) &&
		bounded.flags == QSKETCH_FLAG_MASK;

	/* a smaller exact min and a smaller max: min becomes exact, max stays a bound */
	qsketch_init(&exact);
	qsketch_add(&exact, 1500000);
	qsketch_add(&exact, 4000000);
	memcpy(&m, &exact, sizeof(QSketch));
	good = good && qsketch_merge(&m, &bounded) && m.min == 1500000 &&
		m.flags == QSKETCH_MAX_IS_BOUND && qsketch_validate(&m);
	memcpy(&m, &bounded, sizeof(QSketch));
	good = good && qsketch_merge(&m, &exact) && m.min == 1500000 &&
		m.flags == QSKETCH_MAX_IS_BOUND && qsketch_validate(&m);

	/* the same values as the bounds: exact on a tie */
	qsketch_init(&exact);
	qsketch_add(&exact, bounded.min);
	qsketch_add(&exact, bounded.max);
	memcpy(&m, &bounded, sizeof(QSketch));
	good = good && qsketch_merge(&m, &exact) && m.flags == 0 &&
		m.min == bounded.min && m.max == bounded.max && qsketch_validate(&m);

	/* the bound min is the smaller one: it stays a bound; max is exact */
	qsketch_init(&exact);
	qsketch_add(&exact, 20000000);
	qsketch_add(&exact, 30000000);
	memcpy(&m, &exact, sizeof(QSketch));
	good = good && qsketch_merge(&m, &bounded) && m.min == bounded.min &&
		m.max == 30000000 && m.flags == QSKETCH_MIN_IS_BOUND &&
		qsketch_validate(&m);
	ok(good, "merge keeps track of which of min and max are exact");
}

/* ---------------------------------------------------------------------
 * Remove
 * ---------------------------------------------------------------------
 */

/*
 * Adds n values, removes the marked ones, and compares with the sketch of
 * the rest.
 */
static bool
remove_and_compare(const int64_t *data, size_t n, const bool *drop,
				   bool expect_exact)
{
	QSketch		s;
	QSketch		rest;
	int64_t    *kept = malloc(n * sizeof(int64_t) + 1);
	int64_t    *sorted;
	size_t		nkept = 0;
	size_t		i;
	bool		good = true;

	if (kept == NULL)
		abort();
	build(&s, data, n);
	for (i = 0; i < n; i++)
	{
		if (drop[i])
			good = good && qsketch_remove(&s, data[i]);
		else
			kept[nkept++] = data[i];
	}
	build(&rest, kept, nkept);
	good = good && s.count == rest.count &&
		memcmp(s.buckets, rest.buckets, sizeof(s.buckets)) == 0 &&
		qsketch_validate(&s);
	if (!good)
		diag("buckets or count differ after removal");
	if (nkept > 0)
	{
		sorted = sorted_copy(kept, nkept);
		good = check_quantiles(&s, sorted, nkept) && good;
		free(sorted);
	}
	else
		good = good && memcmp(&s, &rest, sizeof(QSketch)) == 0;
	if (expect_exact)
		good = good && memcmp(&s, &rest, sizeof(QSketch)) == 0;
	free(kept);
	return good;
}

static void
test_remove(void)
{
	const size_t n = 200000;
	int64_t    *data = make_data(DIST_MIXED, n, 4242);
	int64_t    *in_range = make_data(DIST_LOGUNIFORM, n, 4343);
	bool	   *drop = malloc(n * sizeof(bool) + 1);
	int64_t		lo = INT64_MAX;
	int64_t		hi = -1;
	Rng			r = {99};
	size_t		i;

	if (drop == NULL)
		abort();

	/* a random 40%, plus every copy of the minimum and the maximum */
	diag_budget = 5;
	for (i = 0; i < n; i++)
	{
		lo = in_range[i] < lo ? in_range[i] : lo;
		hi = in_range[i] > hi ? in_range[i] : hi;
	}
	for (i = 0; i < n; i++)
		drop[i] = rng_unit(&r) < 0.4 || in_range[i] == lo || in_range[i] == hi;
	ok(remove_and_compare(in_range, n, drop, false),
	   "remove 40%% of log-uniform values including min and max: buckets equal, quantiles within 1%%");

	/* the same on mixed data, with zeros, sub-second and beyond 10 y */
	diag_budget = 5;
	lo = INT64_MAX;
	hi = -1;
	for (i = 0; i < n; i++)
	{
		lo = data[i] < lo ? data[i] : lo;
		hi = data[i] > hi ? data[i] : hi;
	}
	for (i = 0; i < n; i++)
		drop[i] = rng_unit(&r) < 0.4 || data[i] == lo || data[i] == hi;
	ok(remove_and_compare(data, n, drop, false),
	   "remove 40%% of mixed values including min and max: buckets equal, documented estimates");

	/* removals that spare every copy of min and max keep them exact */
	diag_budget = 5;
	for (i = 0; i < n; i++)
		drop[i] = rng_unit(&r) < 0.5 && data[i] != lo && data[i] != hi;
	ok(remove_and_compare(data, n, drop, true),
	   "remove values other than min and max: the sketch equals that of the rest, byte for byte");

	/* removing everything gives the empty sketch */
	diag_budget = 5;
	for (i = 0; i < n; i++)
		drop[i] = true;
	ok(remove_and_compare(data, n, drop, true),
	   "remove every value: the empty sketch");

	free(data);
	free(in_range);
	free(drop);
}

static void
test_remove_extremes(void)
{
	QSketch		s;
	int			k = qsketch_bucket_index(INT64_C(50000000));
	int64_t		lo = qsketch_bucket_lower(k);
	int64_t		hi = qsketch_bucket_upper(k + 5);
	int64_t		sorted[2];
	bool		good;

	/*
	 * Both ends of bucket k and of bucket k + 5.  Removing lo and hi leaves
	 * them as bounds, about 2% off the true extremes (the upper end of k and
	 * the lower end of k + 5), so q = 0 and q = 1 must come from the buckets
	 * to stay within 1%.
	 */
	qsketch_init(&s);
	qsketch_add(&s, lo);
	qsketch_add(&s, qsketch_bucket_upper(k));
	qsketch_add(&s, qsketch_bucket_lower(k + 5));
	qsketch_add(&s, hi);
	good = qsketch_remove(&s, lo) && qsketch_remove(&s, hi) &&
		s.flags == QSKETCH_FLAG_MASK && s.min == lo && s.max == hi;
	sorted[0] = qsketch_bucket_upper(k);
	sorted[1] = qsketch_bucket_lower(k + 5);
	diag_budget = 5;
	good = check_quantiles(&s, sorted, 2) && good;
	ok(good, "after removing min and max, q=0 and q=1 stay within 1%%");

	/* adding a value at or beyond a bound makes it exact again */
	good = qsketch_add(&s, lo) && s.flags == QSKETCH_MAX_IS_BOUND &&
		s.min == lo && qsketch_quantile(&s, 0.0) == lo;
	good = good && qsketch_add(&s, hi - 5) && s.flags == QSKETCH_MAX_IS_BOUND;
	good = good && qsketch_add(&s, hi + 7) && s.flags == 0 &&
		s.max == hi + 7 && qsketch_quantile(&s, 1.0) == hi + 7 &&
		qsketch_validate(&s);
	ok(good, "adding a value at or beyond a bound min or max makes it exact");
}

static void
test_remove_rejects(void)
{
	QSketch		s;
	QSketch		copy;
	bool		good;

	qsketch_init(&s);
	good = !qsketch_remove(&s, 5000000);
	qsketch_add(&s, 2000000);
	qsketch_add(&s, 8000000);
	qsketch_add(&s, 500000);
	memcpy(&copy, &s, sizeof(QSketch));
	good = good &&
		!qsketch_remove(&s, 4000000) && /* empty bucket */
		!qsketch_remove(&s, 400000) &&	/* below min */
		!qsketch_remove(&s, 9000000) && /* above max */
		!qsketch_remove(&s, -1) &&
		memcmp(&s, &copy, sizeof(QSketch)) == 0;
	ok(good, "remove rejects values that cannot be in the sketch, leaving it unchanged");
}

static void
test_remove_absent_value(void)
{
	QSketch		s;
	int64_t		a = QSKETCH_RANGE_MIN * 7;
	int64_t		b = a + 1;
	bool		good;

	/*
	 * Removing b, never added but in the bucket of the min a, is a caller
	 * error the sketch cannot detect; it must still stay valid.
	 */
	qsketch_init(&s);
	qsketch_add(&s, a);
	qsketch_add(&s, INT64_C(90000000));
	good = qsketch_bucket_index(a) == qsketch_bucket_index(b) &&
		qsketch_remove(&s, b) && qsketch_validate(&s) &&
		s.flags == QSKETCH_MIN_IS_BOUND &&
		s.min == qsketch_bucket_lower(qsketch_bucket_index(INT64_C(90000000)));
	ok(good, "removing an absent value that shares the min's bucket keeps the sketch valid");
}

static void
test_moving_window(void)
{
	const size_t n = 120000;
	const size_t w = 3000;
	int64_t    *data = malloc(n * sizeof(int64_t));
	int64_t    *window = malloc(w * sizeof(int64_t));
	QSketch		s;
	Rng			r = {2024};
	bool		good = true;
	int			checks = 0;
	size_t		i;

	if (data == NULL || window == NULL)
		abort();

	/* drifting durations, mostly increasing, so the oldest is often min */
	for (i = 0; i < n; i++)
	{
		double		centre = 2e6 * pow(10.0, 6.0 * (double) i / (double) n);

		data[i] = (int64_t) (centre * exp(0.7 * (rng_unit(&r) - 0.5)));
		if (rng_unit(&r) < 0.01)
			data[i] = rng_range(&r, 0, QSKETCH_LOG_LOW - 1);
	}

	diag_budget = 5;
	qsketch_init(&s);
	for (i = 0; i < n; i++)
	{
		good = good && qsketch_add(&s, data[i]);
		if (i >= w)
			good = good && qsketch_remove(&s, data[i - w]);
		if (i >= w && i % 997 == 0)
		{
			memcpy(window, data + i + 1 - w, w * sizeof(int64_t));
			qsort(window, w, sizeof(int64_t), cmp_int64);
			good = check_quantiles(&s, window, w) && good;
			checks++;
		}
	}
	ok(good, "moving window of %zu over %zu values: %d checks of all quantiles",
	   w, n, checks);
	free(data);
	free(window);
}

/* ---------------------------------------------------------------------
 * Validation and sparse input/output
 * ---------------------------------------------------------------------
 */
static void
test_validate(void)
{
	int64_t    *data = make_data(DIST_MIXED, 5000, 31337);
	QSketch		good;
	QSketch		bad;
	QSketch		empty;
	int			lowest;
	int			highest;
	uint64_t	c;

	build(&good, data, 5000);
	qsketch_init(&empty);
	ok(qsketch_validate(&good) && qsketch_validate(&empty),
	   "validate accepts built and empty sketches");
	lowest = qsketch_next_bucket(&good, 0, &c);
	for (highest = QSKETCH_HIGH_BUCKET; good.buckets[highest] == 0; highest--)
		;

#define CORRUPT(what, desc) \
	do { \
		memcpy(&bad, &good, sizeof(QSketch)); \
		what; \
		ok(!qsketch_validate(&bad), "validate rejects %s", desc); \
	} while (0)

	CORRUPT(bad.count++, "a count above the bucket sum");
	CORRUPT(bad.count--, "a count below the bucket sum");
	CORRUPT(bad.buckets[500]++, "a bucket count that breaks the sum");
	/* lowest holds 2^64 - 1 and highest the rest: the sum is count + 2^64 */
	CORRUPT((bad.buckets[highest] += bad.buckets[lowest] + 1,
			 bad.buckets[lowest] = UINT64_MAX),
			"bucket counts whose sum wraps around to count");
	CORRUPT((bad.min = good.max + 1, bad.flags = QSKETCH_FLAG_MASK), "min > max");
	CORRUPT(bad.min = -1, "a negative min");
	CORRUPT((bad.buckets[(lowest + highest) / 2] += bad.buckets[lowest],
			 bad.buckets[lowest] = 0),
			"a min whose bucket is not the lowest non-empty one");
	CORRUPT(bad.max = qsketch_bucket_lower(highest) - 1,
			"a max outside the highest non-empty bucket");
	CORRUPT(bad.version = QSKETCH_VERSION + 1, "another layout version");
	CORRUPT(bad.flags = 0x4, "unknown flags");

	memcpy(&good, &empty, sizeof(QSketch));
	CORRUPT(bad.buckets[10] = 1, "an empty sketch with a non-empty bucket");
	CORRUPT(bad.min = bad.max = 7, "an empty sketch with min and max set");

	qsketch_init(&good);
	qsketch_add(&good, 5000000);
	CORRUPT(bad.max = 5000001, "a single exact value with min != max");
#undef CORRUPT
	free(data);
}

static void
test_sparse_roundtrip(void)
{
	int64_t    *data = make_data(DIST_PARETO, 10000, 555);
	QSketch		s;
	QSketch		back;
	uint64_t	c;
	int			k;
	int			nonempty = 0;
	bool		good = true;

	build(&s, data, 10000);
	qsketch_remove(&s, s.min);

	/* what the wrapper's text output and input would do */
	qsketch_init(&back);
	back.count = s.count;
	back.min = s.min;
	back.max = s.max;
	back.flags = s.flags;
	for (k = qsketch_next_bucket(&s, 0, &c); k >= 0;
		 k = qsketch_next_bucket(&s, k + 1, &c))
	{
		good = good && c != 0 && qsketch_set_bucket(&back, k, c);
		nonempty++;
	}
	good = good && qsketch_validate(&back) &&
		memcmp(&s, &back, sizeof(QSketch)) == 0 && nonempty > 1;
	ok(good, "sparse iteration and set_bucket round-trip a sketch (%d buckets)",
	   nonempty);

	ok(!qsketch_set_bucket(&back, -1, 1) &&
	   !qsketch_set_bucket(&back, QSKETCH_NBUCKETS, 1) &&
	   qsketch_next_bucket(&back, QSKETCH_NBUCKETS, &c) == -1 &&
	   memcmp(&s, &back, sizeof(QSketch)) == 0,
	   "set_bucket and next_bucket reject indexes out of range");
	free(data);
}

/* ---------------------------------------------------------------------
 * Speed (reported, not tested)
 * ---------------------------------------------------------------------
 */
static void
report_speed(void)
{
	const size_t n = 1000000;
	const int	passes = 10;
	int64_t    *data = make_data(DIST_MIXED, n, 8);
	QSketch		s;
	clock_t		start;
	double		seconds;
	size_t		i;
	int			p;

	qsketch_init(&s);
	start = clock();
	for (p = 0; p < passes; p++)
	{
		for (i = 0; i < n; i++)
			qsketch_add(&s, data[i]);
	}
	seconds = (double) (clock() - start) / CLOCKS_PER_SEC;
	printf("# speed: %.2f ns per qsketch_add (%llu adds of mixed values)\n",
		   seconds * 1e9 / (double) (n * passes), (unsigned long long) s.count);
	free(data);
}

int
main(void)
{
	int			k;

	printf("1..%d\n", NTESTS);

	for (k = 0; k < QSKETCH_NBUCKETS; k++)
		reps[k] = qsketch_bucket_value(k);

	test_layout();
	test_exact_bounds();
	test_bucket_edges();
	test_bucket_extremes();
	test_exhaustive_low_octaves();
	test_sweep();

	test_datasets();
	test_extreme_values();
	test_add_rejects();
	test_huge_count_quantile();

	test_merge_partitions(DIST_MIXED, 100000, 2, 11);
	test_merge_partitions(DIST_MIXED, 100000, 16, 12);
	test_merge_partitions(DIST_PARETO, 50000, 7, 13);
	test_merge_partitions(DIST_TIES, 10000, 3, 14);
	test_merge_empty();
	test_merge_overflow();
	test_merge_bounds();

	test_remove();
	test_remove_extremes();
	test_remove_rejects();
	test_remove_absent_value();
	test_moving_window();

	test_validate();
	test_sparse_roundtrip();

	printf("# largest relative error seen in range: %.7f (bound %.6f)\n",
		   max_seen_error, QSKETCH_ERROR_BOUND);
	report_speed();

	if (tests_run != NTESTS)
	{
		printf("# planned %d tests but ran %d\n", NTESTS, tests_run);
		return 1;
	}
	return tests_failed == 0 ? 0 : 1;
}
