/*-------------------------------------------------------------------------
 *
 * summary.h
 *	  Conventions shared by every summary type (the storable states of the
 *	  sales_kpi aggregates).
 *
 * Each summary type has the same four parts: a flat struct that starts with
 * the varlena header and a version byte; text input/output in a strict
 * JSON-like form ({"v":1,"key":value,...}, keys in a fixed order) and binary
 * send/receive (version byte first, then the fields in the same order),
 * both validating everything they read; transition, combine and inverse
 * functions that update the first argument in place when called as an
 * aggregate; and accessors that never modify their argument.
 *
 * Text output is lossless (floats print in shortest round-trip form, money
 * as exact decimals), because parallel query and sharded engines move
 * partial states between processes and nodes through it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SALES_KPI_SUMMARY_H
#define SALES_KPI_SUMMARY_H

#include "fmgr.h"
#include "lib/stringinfo.h"

/*
 * The version every summary type writes, in its text and binary forms and
 * in the version byte of the stored value.  Readers accept the versions
 * from SUMMARY_OLDEST_VERSION up: a change to a type's layout raises
 * SUMMARY_VERSION, and that type's argument reader then converts a value of
 * an older version, so that summaries stored by an earlier release stay
 * readable.  Every release so far has written version 1.
 */
#define SUMMARY_VERSION 1
#define SUMMARY_OLDEST_VERSION 1

/* The start every summary struct shares: the varlena header, then the version. */
typedef struct SummaryHeader
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint8		version;
} SummaryHeader;

/* Strict reader of the text form of a summary. */
typedef struct SummaryReader
{
	const char *typname;		/* for error messages */
	const char *input;			/* the whole input, for error messages */
	const char *p;				/* next unread character */
} SummaryReader;

extern int	summary_read_begin(SummaryReader *r, const char *typname, const char *input);
extern void summary_read_key(SummaryReader *r, const char *key);
extern int64 summary_read_int64(SummaryReader *r);
extern double summary_read_float8(SummaryReader *r);
extern void summary_read_decimal(SummaryReader *r, int128 *mantissa, int32 *scale);
extern bool summary_read_char_if(SummaryReader *r, char c);
extern void summary_read_char(SummaryReader *r, char c);
extern void summary_read_end(SummaryReader *r);
extern void summary_syntax_error(SummaryReader *r, const char *detail) pg_attribute_noreturn();

/* Writer helpers for the text form. */
extern void summary_write_begin(StringInfo buf);
extern void summary_write_int64(StringInfo buf, const char *key, int64 value);
extern void summary_write_float8(StringInfo buf, const char *key, double value);
extern void summary_write_decimal(StringInfo buf, const char *key, int128 mantissa, int32 scale);
extern void summary_write_end(StringInfo buf);

/* Binary input: every read is bounds-checked and reports 22P03. */
extern int	summary_recv_version(StringInfo msg, const char *typname);
extern int64 summary_recv_int64(StringInfo msg, const char *typname);
extern int32 summary_recv_int32(StringInfo msg, const char *typname);
extern double summary_recv_float8(StringInfo msg, const char *typname);
extern void summary_recv_end(StringInfo msg, const char *typname);
extern void summary_binary_error(const char *typname, const char *detail) pg_attribute_noreturn();

/*
 * A summary argument of any function, detoasted, after checking that it has
 * its type's size and a version this code reads.  Every function reads its
 * summary arguments through this, so a value is never trusted for coming
 * from a table or another function.
 */
extern void *summary_arg(Datum value, Size size, const char *typname);

/*
 * The state a transition, inverse or combine function updates: its first
 * argument itself inside an aggregate (the aggregate owns it), else a copy,
 * so that a direct call never changes a value it was given.  NULL when the
 * argument is NULL (possible for the functions that are not strict).
 */
extern void *summary_state(FunctionCallInfo fcinfo, Size size, const char *typname);

/*
 * Memory for a new state of a transition function: the aggregate's context
 * inside an aggregate, else the current one.
 */
extern void *summary_alloc_state(FunctionCallInfo fcinfo, Size size);

/* A count that would pass 2^63 - 1: 22003. */
extern void summary_count_overflow(const char *typname) pg_attribute_noreturn();

/* An inverse transition removing a row the summary does not hold: 22023. */
extern void summary_remove_error(const char *typname, const char *what) pg_attribute_noreturn();

/* A decoded value whose fields are inconsistent: 22P03 from binary, else 22P02. */
extern void summary_invalid(const char *typname, bool binary, const char *detail) pg_attribute_noreturn();

#endif							/* SALES_KPI_SUMMARY_H */
