/*-------------------------------------------------------------------------
 *
 * survival_math.h
 *	  Cohort win rate: a bounded, flat summary of deal ages and outcomes,
 *	  with the Aalen-Johansen and Kaplan-Meier estimators over it.
 *
 * Pure C99 with no PostgreSQL dependency, so it can be unit-tested on its
 * own; the fmgr wrapper stores a SurvivalSummary directly as the payload of
 * the survival varlena and updates it in place.
 *
 * Data.  Each deal contributes an age in whole days (>= 0) and an outcome:
 * WON or LOST (age = creation to close) or OPEN (age = creation to the as-of
 * instant, i.e. right-censored).
 *
 * Representation and resolution.  Ages are counted in a fixed array of age
 * bins, each holding a won, lost and open counter:
 *
 *	 days    0 ..  365	one bin per day (exact)				366 bins
 *	 days  366 ..  729	one bin per 7 days					 52 bins
 *	 days  730 .. 3699	one bin per 30 days					 99 bins
 *	 days 3700 ..		one overflow bin (unbounded)		  1 bin
 *
 * 518 bins of three uint32 counters plus a 40 byte header: 6256 bytes, for
 * any number of deals.  A dense per-day array over ten years would be 44 KB
 * per aggregate state (per group in a hash aggregate, per stored rollup
 * row) while buying day resolution only where nobody asks for it: win-rate
 * horizons (7/30/90/180/365 days) and typical sales cycles sit inside the
 * first year, which stays exact.
 *
 * A deal in a coarse bin is treated as if its age were the LAST day of that
 * bin, so every estimate at horizon h counts only deals known to have
 * closed by day h: h inside a coarse bin behaves like the last day of the
 * previous bin (at most 6 days early in the weekly tier, 29 days in the
 * monthly tier).  Ages in the overflow bin are only known to be >= 3700:
 * those deals stay in every at-risk set but their closes are never counted
 * by any horizon, and a median that would fall there is "not reached".
 *
 * Conventions.
 *	 - The at-risk set at day t is every deal with (binned) age >= t.
 *	 - Ties: on the same day, closes (won and lost) happen before
 *	   censoring, so open deals of age t are still at risk at t, as in the
 *	   standard Kaplan-Meier estimator.
 *	 - A horizon h includes day h (age <= h).
 *	 - An empty summary, or a horizon before any close, gives a cumulative
 *	   incidence of 0 and a survival of 1.  Results that may be SQL NULL are
 *	   returned through an out parameter and a bool (false = NULL).
 *
 * Estimators, over the bins t in age order, with n_t the number at risk,
 * w_t, l_t the won and lost counts and S(t-) the all-cause KM survival just
 * before t (S(0-) = 1):
 *
 *	 CIF_won(h)  = sum over t <= h of S(t-) * w_t / n_t
 *	 CIF_lost(h) = sum over t <= h of S(t-) * l_t / n_t
 *	 S(t)		 = S(t-) * (n_t - w_t - l_t) / n_t
 *
 * so CIF_won(h) + CIF_lost(h) + S(h) = 1.  The KM median is the smallest t
 * with S(t) <= 0.5, compared with a tolerance of SURVIVAL_MEDIAN_EPS so a
 * product that is exactly 1/2 in exact arithmetic (e.g. 9/10 * 7/9 * 5/7)
 * is not missed by a rounding error in the last bit.
 *
 * Counters are uint32; an update that would overflow one fails (returns
 * false) and changes nothing, and the caller raises an error.  Totals are
 * uint64 and cannot overflow: at most 518 * 3 * (2^32 - 1) deals fit.
 *
 * The struct holds uint64 fields, so it must live at an 8-byte aligned
 * address: embed it after the varlena length word in a struct (the compiler
 * pads) and give the SQL type ALIGNMENT = double.  Its layout has no
 * implicit padding; survival_init() zeroes all of it, so summaries can be
 * compared with memcmp().
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_SURVIVAL_MATH_H
#define SALES_KPI_SURVIVAL_MATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bin layout; see the table above */
#define SURVIVAL_EXACT_DAYS		366		/* days 0..365, one bin each */
#define SURVIVAL_WEEK_BINS		52		/* then 7-day bins */
#define SURVIVAL_WEEK_WIDTH		7
#define SURVIVAL_MONTH_BINS		99		/* then 30-day bins */
#define SURVIVAL_MONTH_WIDTH	30

#define SURVIVAL_WEEK_START		SURVIVAL_EXACT_DAYS		/* 366 */
#define SURVIVAL_MONTH_START	(SURVIVAL_WEEK_START + \
								 SURVIVAL_WEEK_BINS * SURVIVAL_WEEK_WIDTH)	/* 730 */
#define SURVIVAL_OVERFLOW_START (SURVIVAL_MONTH_START + \
								 SURVIVAL_MONTH_BINS * SURVIVAL_MONTH_WIDTH)	/* 3700 */
#define SURVIVAL_OVERFLOW_BIN	(SURVIVAL_EXACT_DAYS + SURVIVAL_WEEK_BINS + \
								 SURVIVAL_MONTH_BINS)	/* 517 */
#define SURVIVAL_NBINS			(SURVIVAL_OVERFLOW_BIN + 1)	/* 518 */

/* Last day of the overflow bin, meaning "unbounded" */
#define SURVIVAL_UNBOUNDED_DAY	INT32_MAX

#define SURVIVAL_MAGIC			0x53525631	/* "SRV1"; bump on layout change */
#define SURVIVAL_MEDIAN_EPS		1e-12

typedef enum SurvivalOutcome
{
	SURVIVAL_WON = 0,
	SURVIVAL_LOST = 1,
	SURVIVAL_OPEN = 2
} SurvivalOutcome;

#define SURVIVAL_NOUTCOMES		3

typedef struct SurvivalBin
{
	uint32_t	count[SURVIVAL_NOUTCOMES];	/* indexed by SurvivalOutcome */
} SurvivalBin;

typedef struct SurvivalSummary
{
	uint32_t	magic;			/* SURVIVAL_MAGIC */
	uint32_t	nbins;			/* SURVIVAL_NBINS */
	uint64_t	n;				/* number of deals */
	uint64_t	total[SURVIVAL_NOUTCOMES];	/* per outcome, over all bins */
	SurvivalBin bins[SURVIVAL_NBINS];
} SurvivalSummary;

#define SURVIVAL_SUMMARY_SIZE	(40 + SURVIVAL_NBINS * 12)	/* 6256 bytes */

/* One non-empty bin, as produced by survival_next_bin() */
typedef struct SurvivalBinCounts
{
	int32_t		first_day;		/* the day to write in the text form */
	int32_t		last_day;		/* SURVIVAL_UNBOUNDED_DAY for overflow */
	uint32_t	won;
	uint32_t	lost;
	uint32_t	open;
} SurvivalBinCounts;

/* Building and maintaining a summary */
extern void survival_init(SurvivalSummary *s);
extern bool survival_add(SurvivalSummary *s, int32_t days, SurvivalOutcome outcome);
extern bool survival_remove(SurvivalSummary *s, int32_t days, SurvivalOutcome outcome);
extern bool survival_add_counts(SurvivalSummary *s, int32_t days,
								uint32_t won, uint32_t lost, uint32_t open);
extern bool survival_merge(SurvivalSummary *dst, const SurvivalSummary *src);
extern bool survival_validate(const SurvivalSummary *s, size_t size);

/* Bin geometry */
extern int	survival_day_bin(int32_t days);
extern int32_t survival_bin_first_day(int bin);
extern int32_t survival_bin_last_day(int bin);

/* Walking the non-empty bins, for the text and binary output forms */
extern bool survival_next_bin(const SurvivalSummary *s, int *cursor,
							  SurvivalBinCounts *out);

/* Estimators */
extern double survival_cumulative_incidence_won(const SurvivalSummary *s,
												int32_t horizon_days);
extern double survival_cumulative_incidence_lost(const SurvivalSummary *s,
												 int32_t horizon_days);
extern double survival_km_survival(const SurvivalSummary *s, int32_t days);
extern bool survival_naive_win_rate(const SurvivalSummary *s,
									int32_t horizon_days, double *out);
extern bool survival_km_median(const SurvivalSummary *s, int32_t *out_days);

/* Outcome names ("won", "lost", "open") */
extern bool survival_parse_outcome(const char *str, size_t len,
								   SurvivalOutcome *out);
extern const char *survival_outcome_name(SurvivalOutcome outcome);

#endif							/* SALES_KPI_SURVIVAL_MATH_H */
