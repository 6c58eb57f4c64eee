/*-------------------------------------------------------------------------
 *
 * errors.h
 *	  Errors about the caller's data or arguments, raised without context.
 *
 * Such an error raised while a KPI's query runs (a currency with no rate,
 * an unknown dimension, a refused setting) would carry as context the text
 * of every internal query it is nested in: hundreds of lines in psql that
 * say nothing the message does not.  Clearing the context stack just
 * before raising drops them.  This is safe because every place an error
 * lands (PG_CATCH, a PL/pgSQL exception block, the main loop) restores the
 * stack it saved.  An error a parallel worker raises this way is raised
 * again by the leader; a log hook (errors.c) drops its context there.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_ERRORS_H
#define SALES_KPI_ERRORS_H

#include "utils/elog.h"

#define ereport_without_context(...) \
	do { \
		error_context_stack = NULL; \
		ereport(ERROR, __VA_ARGS__); \
		pg_unreachable(); \
	} while (0)

extern void sales_kpi_install_error_hook(void);

#endif							/* SALES_KPI_ERRORS_H */
