/*-------------------------------------------------------------------------
 *
 * stats_math.h
 *	  Statistics helpers with no PostgreSQL dependency (unit-testable).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_STATS_MATH_H
#define SALES_KPI_STATS_MATH_H

#include <stdint.h>

extern double normal_quantile(double p);
extern void wilson_interval(double successes, double n, double confidence,
							double *lower, double *upper);
extern void odds_ratio_interval(double a, double b, double c, double d, double confidence,
								double *odds_ratio, double *lower, double *upper);

#endif							/* SALES_KPI_STATS_MATH_H */
