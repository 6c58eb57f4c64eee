/*-------------------------------------------------------------------------
 *
 * survival_math.c
 *	  Cohort win rate: a bounded, flat summary of deal ages and outcomes,
 *	  with the Aalen-Johansen and Kaplan-Meier estimators over it.
 *
 * See survival_math.h for the layout, the resolution and the conventions.
 * Nothing here allocates memory; the per-row functions touch one bin.
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "survival_math.h"

/* The wrapper stores the struct as is, so its size is part of the format */
typedef char survival_size_check[(sizeof(SurvivalSummary) ==
								  SURVIVAL_SUMMARY_SIZE) ? 1 : -1];

/* First bin of the weekly and monthly tiers */
#define WEEK_FIRST_BIN		SURVIVAL_EXACT_DAYS
#define MONTH_FIRST_BIN		(SURVIVAL_EXACT_DAYS + SURVIVAL_WEEK_BINS)

/*
 * survival_day_bin
 *		The bin holding an age of 'days', or -1 for a negative age.
 */
int
survival_day_bin(int32_t days)
{
	if (days < 0)
		return -1;
	if (days < SURVIVAL_WEEK_START)
		return (int) days;
	if (days < SURVIVAL_MONTH_START)
		return WEEK_FIRST_BIN +
			(int) ((days - SURVIVAL_WEEK_START) / SURVIVAL_WEEK_WIDTH);
	if (days < SURVIVAL_OVERFLOW_START)
		return MONTH_FIRST_BIN +
			(int) ((days - SURVIVAL_MONTH_START) / SURVIVAL_MONTH_WIDTH);
	return SURVIVAL_OVERFLOW_BIN;
}

/*
 * survival_bin_first_day
 *		The smallest age in a bin, or -1 if there is no such bin.
 */
int32_t
survival_bin_first_day(int bin)
{
	if (bin < 0 || bin >= SURVIVAL_NBINS)
		return -1;
	if (bin < WEEK_FIRST_BIN)
		return (int32_t) bin;
	if (bin < MONTH_FIRST_BIN)
		return SURVIVAL_WEEK_START +
			(int32_t) (bin - WEEK_FIRST_BIN) * SURVIVAL_WEEK_WIDTH;
	if (bin < SURVIVAL_OVERFLOW_BIN)
		return SURVIVAL_MONTH_START +
			(int32_t) (bin - MONTH_FIRST_BIN) * SURVIVAL_MONTH_WIDTH;
	return SURVIVAL_OVERFLOW_START;
}

/*
 * survival_bin_last_day
 *		The largest age in a bin: the age every deal in the bin is treated
 *		as having.  SURVIVAL_UNBOUNDED_DAY for the overflow bin, -1 if there
 *		is no such bin.
 */
int32_t
survival_bin_last_day(int bin)
{
	if (bin < 0 || bin >= SURVIVAL_NBINS)
		return -1;
	if (bin == SURVIVAL_OVERFLOW_BIN)
		return SURVIVAL_UNBOUNDED_DAY;
	return survival_bin_first_day(bin + 1) - 1;
}

/*
 * Number of leading bins whose last day is <= horizon, i.e. the bins an
 * estimate at that horizon may count.  Never includes the overflow bin.
 */
static int
bins_through(int32_t horizon)
{
	int			bin;

	if (horizon < 0)
		return 0;
	bin = survival_day_bin(horizon);
	if (bin == SURVIVAL_OVERFLOW_BIN)
		return SURVIVAL_OVERFLOW_BIN;
	/* a coarse bin counts only once the horizon reaches its last day */
	return survival_bin_last_day(bin) == horizon ? bin + 1 : bin;
}

/*
 * survival_init
 *		Make 's' the empty summary.  Zeroes every byte, padding included
 *		(there is none), so equal summaries are equal under memcmp().
 */
void
survival_init(SurvivalSummary *s)
{
	memset(s, 0, sizeof(SurvivalSummary));
	s->magic = SURVIVAL_MAGIC;
	s->nbins = SURVIVAL_NBINS;
}

/*
 * survival_add
 *		Count one deal of age 'days' with the given outcome.
 *
 * Returns false, changing nothing, if the age is negative, the outcome is
 * not one of the three, or the bin's counter is full (the caller raises an
 * overflow error).
 */
bool
survival_add(SurvivalSummary *s, int32_t days, SurvivalOutcome outcome)
{
	int			bin = survival_day_bin(days);
	uint32_t   *counter;

	if (bin < 0 || (unsigned) outcome >= SURVIVAL_NOUTCOMES)
		return false;
	counter = &s->bins[bin].count[outcome];
	if (*counter == UINT32_MAX)
		return false;
	(*counter)++;
	s->total[outcome]++;
	s->n++;
	return true;
}

/*
 * survival_remove
 *		Inverse of survival_add, for moving-window aggregates.
 *
 * Returns false, changing nothing, if no such deal was counted: the bin's
 * counter is already zero (or the arguments are invalid).
 */
bool
survival_remove(SurvivalSummary *s, int32_t days, SurvivalOutcome outcome)
{
	int			bin = survival_day_bin(days);
	uint32_t   *counter;

	if (bin < 0 || (unsigned) outcome >= SURVIVAL_NOUTCOMES)
		return false;
	counter = &s->bins[bin].count[outcome];
	if (*counter == 0)
		return false;
	(*counter)--;
	s->total[outcome]--;
	s->n--;
	return true;
}

/*
 * survival_add_counts
 *		Add won/lost/open deals of age 'days' in one step.
 *
 * This is how the input functions rebuild a summary from its sparse text or
 * binary form: start from survival_init() and add each listed bin.  Adding
 * (rather than overwriting) keeps repeated or non-canonical days (any day
 * inside a bin maps to that bin) meaningful.  Returns false, changing
 * nothing, on a negative age or a counter overflow.
 */
bool
survival_add_counts(SurvivalSummary *s, int32_t days,
					uint32_t won, uint32_t lost, uint32_t open)
{
	int			bin = survival_day_bin(days);
	uint32_t	add[SURVIVAL_NOUTCOMES];
	uint32_t   *count;

	if (bin < 0)
		return false;
	add[SURVIVAL_WON] = won;
	add[SURVIVAL_LOST] = lost;
	add[SURVIVAL_OPEN] = open;
	count = s->bins[bin].count;

	for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
	{
		if (count[o] > UINT32_MAX - add[o])
			return false;
	}
	for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
	{
		count[o] += add[o];
		s->total[o] += add[o];
		s->n += add[o];
	}
	return true;
}

/*
 * survival_merge
 *		Add every deal of 'src' to 'dst' (combine and rollup).
 *
 * The result is exactly the summary of the union, whatever the partition.
 * Returns false, leaving 'dst' unchanged, if any counter would overflow.
 */
bool
survival_merge(SurvivalSummary *dst, const SurvivalSummary *src)
{
	/* check everything first so a failure leaves dst whole */
	for (int b = 0; b < SURVIVAL_NBINS; b++)
	{
		for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
		{
			if (dst->bins[b].count[o] > UINT32_MAX - src->bins[b].count[o])
				return false;
		}
	}

	for (int b = 0; b < SURVIVAL_NBINS; b++)
	{
		for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
			dst->bins[b].count[o] += src->bins[b].count[o];
	}
	for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
		dst->total[o] += src->total[o];
	dst->n += src->n;
	return true;
}

/*
 * survival_validate
 *		Check a summary read from untrusted bytes ('size' of them).
 *
 * The layout must be this one, each per-outcome total must equal the sum
 * of its bin counters and n the sum of the totals.  The estimators rely on
 * that: n is the at-risk count at day 0.
 */
bool
survival_validate(const SurvivalSummary *s, size_t size)
{
	uint64_t	sum[SURVIVAL_NOUTCOMES] = {0, 0, 0};

	if (s == NULL || size != sizeof(SurvivalSummary))
		return false;
	if (s->magic != SURVIVAL_MAGIC || s->nbins != SURVIVAL_NBINS)
		return false;

	for (int b = 0; b < SURVIVAL_NBINS; b++)
	{
		for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
			sum[o] += s->bins[b].count[o];
	}
	for (int o = 0; o < SURVIVAL_NOUTCOMES; o++)
	{
		if (sum[o] != s->total[o])
			return false;
	}
	/* the three sums are below 2^42 each, so this cannot wrap */
	return s->n == sum[SURVIVAL_WON] + sum[SURVIVAL_LOST] + sum[SURVIVAL_OPEN];
}

/*
 * survival_next_bin
 *		Step through the non-empty bins in age order.
 *
 * Start with *cursor = 0; each call that returns true fills 'out' and
 * advances the cursor.  Returns false when no non-empty bin is left.
 */
bool
survival_next_bin(const SurvivalSummary *s, int *cursor, SurvivalBinCounts *out)
{
	for (int b = *cursor < 0 ? 0 : *cursor; b < SURVIVAL_NBINS; b++)
	{
		const uint32_t *count = s->bins[b].count;

		if ((count[SURVIVAL_WON] | count[SURVIVAL_LOST] | count[SURVIVAL_OPEN]) == 0)
			continue;
		out->first_day = survival_bin_first_day(b);
		out->last_day = survival_bin_last_day(b);
		out->won = count[SURVIVAL_WON];
		out->lost = count[SURVIVAL_LOST];
		out->open = count[SURVIVAL_OPEN];
		*cursor = b + 1;
		return true;
	}
	*cursor = SURVIVAL_NBINS;
	return false;
}

/*
 * One pass of the Aalen-Johansen estimator through every bin whose last day
 * is <= horizon.  Sets the cumulative incidence of won and of lost and the
 * all-cause Kaplan-Meier survival S(horizon).
 */
static void
estimate(const SurvivalSummary *s, int32_t horizon,
		 double *cif_won, double *cif_lost, double *surv)
{
	int			nbins = bins_through(horizon);
	uint64_t	at_risk = s->n;	/* deals with age >= the current bin */
	double		S = 1.0;		/* S(t-) until the update below */
	double		cw = 0.0;
	double		cl = 0.0;

	for (int b = 0; b < nbins; b++)
	{
		const uint32_t *count = s->bins[b].count;
		uint64_t	won = count[SURVIVAL_WON];
		uint64_t	lost = count[SURVIVAL_LOST];
		uint64_t	closed = won + lost;
		uint64_t	all = closed + count[SURVIVAL_OPEN];

		if (all == 0)
			continue;
		/* only an unvalidated, inconsistent summary gets here */
		if (all > at_risk)
			break;
		if (closed > 0)
		{
			/* closes come first: open deals of this age are still at risk */
			cw += S * (double) won / (double) at_risk;
			cl += S * (double) lost / (double) at_risk;
			S *= (double) (at_risk - closed) / (double) at_risk;
		}
		at_risk -= all;
	}

	/*
	 * Each is in [0, 1] in exact arithmetic; a sum of products can round to
	 * 1.0000000000000002 (two of three deals won on day 0, the third on a
	 * later day once the one open deal left the risk set).
	 */
	*cif_won = fmin(cw, 1.0);
	*cif_lost = fmin(cl, 1.0);
	*surv = S;
}

/*
 * survival_cumulative_incidence_won
 *		Aalen-Johansen cumulative incidence of 'won' by horizon_days, with
 *		'lost' competing and 'open' censored.  0 when nothing is known.
 */
double
survival_cumulative_incidence_won(const SurvivalSummary *s, int32_t horizon_days)
{
	double		cw,
				cl,
				surv;

	estimate(s, horizon_days, &cw, &cl, &surv);
	return cw;
}

/*
 * survival_cumulative_incidence_lost
 *		The same for 'lost', with 'won' competing.
 */
double
survival_cumulative_incidence_lost(const SurvivalSummary *s, int32_t horizon_days)
{
	double		cw,
				cl,
				surv;

	estimate(s, horizon_days, &cw, &cl, &surv);
	return cl;
}

/*
 * survival_km_survival
 *		Kaplan-Meier probability that a deal is still open after 'days'
 *		(closes of either kind are the event).  1 for an empty summary or a
 *		negative day.
 */
double
survival_km_survival(const SurvivalSummary *s, int32_t days)
{
	double		cw,
				cl,
				surv;

	estimate(s, days, &cw, &cl, &surv);
	return surv;
}

/*
 * survival_naive_win_rate
 *		Share of all deals, open ones included, won with age <= horizon.
 *
 * Biased low while a cohort still has open deals; reported next to the
 * Aalen-Johansen estimate for comparison.  False (NULL) when empty.
 */
bool
survival_naive_win_rate(const SurvivalSummary *s, int32_t horizon_days,
						double *out)
{
	int			nbins = bins_through(horizon_days);
	uint64_t	won = 0;

	if (s->n == 0)
		return false;
	for (int b = 0; b < nbins; b++)
		won += s->bins[b].count[SURVIVAL_WON];
	*out = (double) won / (double) s->n;
	return true;
}

/*
 * survival_km_median
 *		Kaplan-Meier median time to close: the smallest day t with
 *		S(t) <= 0.5.
 *
 * In a coarse bin t is the bin's last day.  Returns false (NULL) if S never
 * gets there within the bounded bins, including when it would only get
 * there in the overflow bin, whose ages are unknown.
 */
bool
survival_km_median(const SurvivalSummary *s, int32_t *out_days)
{
	uint64_t	at_risk = s->n;
	double		S = 1.0;

	for (int b = 0; b < SURVIVAL_OVERFLOW_BIN; b++)
	{
		const uint32_t *count = s->bins[b].count;
		uint64_t	closed = (uint64_t) count[SURVIVAL_WON] + count[SURVIVAL_LOST];
		uint64_t	all = closed + count[SURVIVAL_OPEN];

		if (all == 0)
			continue;
		if (all > at_risk)
			break;
		if (closed > 0)
		{
			S *= (double) (at_risk - closed) / (double) at_risk;
			/* tolerate rounding of a product that is exactly 1/2 */
			if (S <= 0.5 + SURVIVAL_MEDIAN_EPS)
			{
				*out_days = survival_bin_last_day(b);
				return true;
			}
		}
		at_risk -= all;
	}
	return false;
}

/*
 * survival_parse_outcome
 *		Map "won", "lost" or "open" (exactly, as in stage.kind) to the enum.
 *		'str' need not be NUL-terminated.
 */
bool
survival_parse_outcome(const char *str, size_t len, SurvivalOutcome *out)
{
	if (len == 3 && memcmp(str, "won", 3) == 0)
		*out = SURVIVAL_WON;
	else if (len == 4 && memcmp(str, "lost", 4) == 0)
		*out = SURVIVAL_LOST;
	else if (len == 4 && memcmp(str, "open", 4) == 0)
		*out = SURVIVAL_OPEN;
	else
		return false;
	return true;
}

/*
 * survival_outcome_name
 *		The text name of an outcome, or NULL for an invalid value.
 */
const char *
survival_outcome_name(SurvivalOutcome outcome)
{
	switch (outcome)
	{
		case SURVIVAL_WON:
			return "won";
		case SURVIVAL_LOST:
			return "lost";
		case SURVIVAL_OPEN:
			return "open";
	}
	return NULL;
}
