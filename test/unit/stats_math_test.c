/*
 * Unit tests of src/stats_math.c (TAP).  Build and run:
 *   gcc -std=c99 -O2 -Wall -Wextra -Werror -Isrc test/unit/stats_math_test.c src/stats_math.c -lm
 */
#include <math.h>
#include <stdio.h>

#include "stats_math.h"

static int	n_test = 0;
static int	n_fail = 0;

static void
check(int ok, const char *what)
{
	n_test++;
	if (!ok)
		n_fail++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", n_test, what);
}

static int
close_rel(double got, double want, double tol)
{
	return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

int
main(void)
{
	/* reference quantiles of the standard normal (to 16 digits) */
	/*
	 * Near p = 1 the answer is limited by how p itself is represented: the
	 * double nearest 0.999999 differs from it by about 1e-17, which moves z
	 * by about 1e-11, so that case gets a looser tolerance.
	 */
	static const struct
	{
		double		p;
		double		z;
		double		tol;
	}			ref[] = {
		{0.5, 0.0, 1e-14},
		{0.975, 1.959963984540054, 1e-14},
		{0.95, 1.6448536269514722, 1e-14},
		{0.995, 2.5758293035489004, 1e-14},
		{0.9, 1.2815515655446004, 1e-14},
		{0.025, -1.959963984540054, 1e-14},
		{1e-10, -6.361340902404056, 1e-14},
		{0.999999, 4.753424308822899, 1e-10},
	};
	char		label[128];
	double		worst = 0;

	for (size_t i = 0; i < sizeof(ref) / sizeof(ref[0]); i++)
	{
		snprintf(label, sizeof(label), "normal_quantile(%g) = %.16g", ref[i].p, ref[i].z);
		check(close_rel(normal_quantile(ref[i].p), ref[i].z, ref[i].tol), label);
	}

	/* Phi(Phi^-1(p)) = p across the range, with Phi from erfc */
	for (int k = 1; k < 100000; k++)
	{
		double		p = k / 100000.0;
		double		back = 0.5 * erfc(-normal_quantile(p) / sqrt(2.0));

		worst = fmax(worst, fabs(back - p) / p);
	}
	snprintf(label, sizeof(label), "Phi(normal_quantile(p)) = p to 1e-14 relative (worst %.2g)", worst);
	check(worst < 1e-14, label);

	/* Wilson interval: a textbook case and its boundaries */
	{
		double		lo,
					hi;

		wilson_interval(3, 4, 0.95, &lo, &hi);
		check(close_rel(lo, 0.30064184258240, 1e-12) && close_rel(hi, 0.95441273919030, 1e-12),
			  "Wilson 95% interval of 3/4 is [0.300642, 0.954413]");
		wilson_interval(20, 20, 0.95, &lo, &hi);
		check(hi == 1.0 && close_rel(lo, 20 / (20 + 1.959963984540054 * 1.959963984540054), 1e-12),
			  "all successes: upper bound 1, lower n/(n+z^2)");
		wilson_interval(0, 20, 0.95, &lo, &hi);
		check(lo == 0.0 && hi > 0 && hi < 0.2, "no successes: lower bound 0");
		wilson_interval(1, 1, 0.5, &lo, &hi);
		check(lo >= 0 && hi <= 1 && lo < hi, "one trial: a proper interval inside [0, 1]");
	}

	/*
	 * The interval contains the proportion exactly, whatever the rounding:
	 * 9 of 9 gave an upper bound of 0.9999999999999999 and 0 of 15 a lower
	 * bound of 1.4e-17 before the bounds were clamped to it.
	 */
	{
		double		lo,
					hi;
		int			outside = 0;
		static const double confidences[] = {0.5, 0.8, 0.9, 0.95, 0.99, 0.999999, 0.9999999999999999};

		for (size_t c = 0; c < sizeof(confidences) / sizeof(confidences[0]); c++)
			for (int n = 1; n <= 2000; n++)
				for (int k = 0; k <= n; k += (n < 50 ? 1 : n / 7 + 1))
				{
					wilson_interval(k, n, confidences[c], &lo, &hi);
					if (!(lo <= (double) k / n && (double) k / n <= hi && lo >= 0 && hi <= 1))
						outside++;
					if ((k == 0 && lo != 0) || (k == n && hi != 1))
						outside++;
				}
		snprintf(label, sizeof(label),
				 "Wilson bounds contain k/n, are 0 at k = 0 and 1 at k = n (n <= 2000, 7 confidences): %d failures",
				 outside);
		check(outside == 0, label);
		wilson_interval(9, 9, 0.95, &lo, &hi);
		check(hi == 1.0, "9 of 9: upper bound exactly 1");
		wilson_interval(0, 15, 0.95, &lo, &hi);
		check(lo == 0.0, "0 of 15: lower bound exactly 0");
	}

	/* a confidence within 1e-16 of 1: finite bounds, not NaN */
	{
		double		or,
					lo,
					hi;

		odds_ratio_interval(30, 70, 10, 90, 0.9999999999999999, &or, &lo, &hi);
		check(isfinite(lo) && isfinite(hi) && lo > 0 && lo < or && or < hi,
			  "odds ratio at confidence 0.9999999999999999: finite bounds around the estimate");
		odds_ratio_interval(30, 70, 10, 90, 0.95, &or, &lo, &hi);
		check(close_rel(or, 30.0 * 90 / (70 * 10), 1e-14) &&
			  close_rel(lo, exp(log(or) - 1.959963984540054 * sqrt(1.0 / 30 + 1.0 / 70 + 1.0 / 10 + 1.0 / 90)), 1e-12),
			  "odds ratio 3.857 with its Woolf 95% lower bound");
	}

	printf("1..%d\n", n_test);
	return n_fail == 0 ? 0 : 1;
}
