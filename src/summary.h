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

/* the version every summary type writes; readers reject any other */
#define SUMMARY_VERSION 1

/* Strict reader of the text form of a summary. */
typedef struct SummaryReader
{
	const char *typname;		/* for error messages */
	const char *input;			/* the whole input, for error messages */
	const char *p;				/* next unread character */
} SummaryReader;

extern void summary_read_begin(SummaryReader *r, const char *typname, const char *input);
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
extern void summary_recv_version(StringInfo msg, const char *typname);
extern int64 summary_recv_int64(StringInfo msg, const char *typname);
extern int32 summary_recv_int32(StringInfo msg, const char *typname);
extern double summary_recv_float8(StringInfo msg, const char *typname);
extern void summary_recv_end(StringInfo msg, const char *typname);
extern void summary_binary_error(const char *typname, const char *detail) pg_attribute_noreturn();

/* A decoded value whose fields are inconsistent: 22P03 from binary, else 22P02. */
extern void summary_invalid(const char *typname, bool binary, const char *detail) pg_attribute_noreturn();

#endif							/* SALES_KPI_SUMMARY_H */
