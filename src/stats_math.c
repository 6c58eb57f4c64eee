/*-------------------------------------------------------------------------
 *
 * stats_math.c
 *	  Statistics helpers with no PostgreSQL dependency (unit-testable).
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>

#include "stats_math.h"

#define SQRT_2PI 2.50662827463100050242

/*
 * Inverse of the standard normal CDF for 0 < p < 1.
 *
 * P. J. Acklam's rational approximation (relative error 1.15e-9), refined
 * by one step of Halley's method on erfc, which brings it to full double
 * precision.
 */
double
normal_quantile(double p)
{
	static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
		-2.759285104469687e+02, 1.383577518672690e+02,
	-3.066479806614716e+01, 2.506628277459239e+00};
	static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
		-1.556989798598866e+02, 6.680131188771972e+01,
	-1.328068155288572e+01};
	static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
		-2.400758277161838e+00, -2.549732539343734e+00,
	4.374664141464968e+00, 2.938163982698783e+00};
	static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
	2.445134137142996e+00, 3.754408661907416e+00};
	const double p_low = 0.02425;
	double		q,
				r,
				x,
				e,
				u;

	if (p < p_low)
	{
		q = sqrt(-2 * log(p));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
			((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	else if (p <= 1 - p_low)
	{
		q = p - 0.5;
		r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
			(((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
	}
	else
	{
		q = sqrt(-2 * log(1 - p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
			((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}

	/* Halley step: e is the CDF error at x */
	e = 0.5 * erfc(-x / sqrt(2.0)) - p;
	u = e * SQRT_2PI * exp(x * x / 2);
	return x - u / (1 + x * u / 2);
}

/*
 * The two-sided critical value z of a confidence in (0, 1): the upper
 * quantile 1 - (1 - confidence) / 2.  For a confidence within about 1e-16
 * of 1 that difference rounds to 1, whose quantile is infinite; the lower
 * tail, whose probability is still representable, gives it instead.
 */
static double
two_sided_z(double confidence)
{
	double		tail = (1 - confidence) / 2;

	if (1 - tail < 1)
		return normal_quantile(1 - tail);
	return -normal_quantile(tail);
}

/*
 * Wilson score interval for a proportion successes / n at the given
 * two-sided confidence; n > 0.  The interval always contains the observed
 * proportion; the bounds are clamped to it, and to [0, 1], so that rounding
 * never leaves an upper bound of 0.9999999999999999 for a proportion of 1.
 */
void
wilson_interval(double successes, double n, double confidence,
				double *lower, double *upper)
{
	double		z = two_sided_z(confidence);
	double		phat = successes / n;
	double		z2n = z * z / n;
	double		center = (phat + z2n / 2) / (1 + z2n);
	double		half = z * sqrt(phat * (1 - phat) / n + z2n / (4 * n)) / (1 + z2n);

	*lower = fmax(0.0, fmin(center - half, phat));
	*upper = fmin(1.0, fmax(center + half, phat));
}

/*
 * Odds ratio (a d) / (b c) of a 2x2 table (a, b: with the factor, outcome
 * true and false; c, d: without) and its Woolf confidence interval,
 * exp(ln OR -/+ z sqrt(1/a + 1/b + 1/c + 1/d)).  When a cell is zero, 0.5 is
 * added to every cell (Haldane-Anscombe), so the estimate and the interval
 * stay finite.
 */
void
odds_ratio_interval(double a, double b, double c, double d, double confidence,
					double *odds_ratio, double *lower, double *upper)
{
	double		z = two_sided_z(confidence);
	double		log_or,
				se;

	if (a == 0 || b == 0 || c == 0 || d == 0)
	{
		a += 0.5;
		b += 0.5;
		c += 0.5;
		d += 0.5;
	}
	log_or = log(a) + log(d) - log(b) - log(c);
	se = sqrt(1 / a + 1 / b + 1 / c + 1 / d);
	*odds_ratio = exp(log_or);
	*lower = exp(log_or - z * se);
	*upper = exp(log_or + z * se);
}
