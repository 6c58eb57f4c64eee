/*-------------------------------------------------------------------------
 *
 * summary.c
 *	  Text and binary I/O helpers shared by the summary types.
 *
 * The text form is a strict subset of JSON: one object, keys in the order
 * the type defines, integers, floats (shortest round-trip form) and exact
 * decimals (quoted, so JSON tools do not round them through a double).
 * White space between tokens is allowed; anything else is an error with
 * SQLSTATE 22P02 that quotes the input.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "exact_sum.h"
#include "summary.h"

/* the detail of an error about a version this code does not read */
static const char *
versions_read(void)
{
	if (SUMMARY_OLDEST_VERSION == SUMMARY_VERSION)
		return psprintf("This version of sales_kpi reads version %d.", SUMMARY_VERSION);
	return psprintf("This version of sales_kpi reads versions %d to %d.",
					SUMMARY_OLDEST_VERSION, SUMMARY_VERSION);
}

void
summary_syntax_error(SummaryReader *r, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", r->typname, r->input),
			 errdetail("%s at character %d.", detail, (int) (r->p - r->input) + 1)));
}

static void
skip_space(SummaryReader *r)
{
	while (*r->p != '\0' && isspace((unsigned char) *r->p))
		r->p++;
}

bool
summary_read_char_if(SummaryReader *r, char c)
{
	skip_space(r);
	if (*r->p != c)
		return false;
	r->p++;
	return true;
}

void
summary_read_char(SummaryReader *r, char c)
{
	if (!summary_read_char_if(r, c))
	{
		char		detail[64];

		snprintf(detail, sizeof(detail), "Expected \"%c\"", c);
		summary_syntax_error(r, detail);
	}
}

/*
 * Opens the object and checks the version key, which always comes first;
 * returns the version.
 */
int
summary_read_begin(SummaryReader *r, const char *typname, const char *input)
{
	int64		version;

	r->typname = typname;
	r->input = input;
	r->p = input;
	summary_read_char(r, '{');
	skip_space(r);
	if (strncmp(r->p, "\"v\"", 3) != 0)
		summary_syntax_error(r, "Expected the version key \"v\"");
	r->p += 3;
	summary_read_char(r, ':');
	version = summary_read_int64(r);
	if (version < SUMMARY_OLDEST_VERSION || version > SUMMARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("unsupported %s version %lld", typname, (long long) version),
				 errdetail("%s", versions_read())));
	return (int) version;
}

/* Expects ,"key": */
void
summary_read_key(SummaryReader *r, const char *key)
{
	size_t		len = strlen(key);

	summary_read_char(r, ',');
	skip_space(r);
	if (r->p[0] != '"' || strncmp(r->p + 1, key, len) != 0 || r->p[len + 1] != '"')
	{
		char		detail[128];

		snprintf(detail, sizeof(detail), "Expected the key \"%s\"", key);
		summary_syntax_error(r, detail);
	}
	r->p += len + 2;
	summary_read_char(r, ':');
}

int64
summary_read_int64(SummaryReader *r)
{
	const char *start;
	char	   *end;
	long long	v;

	skip_space(r);
	start = r->p;
	if (*start == '-')
		r->p++;
	if (!isdigit((unsigned char) *r->p))
		summary_syntax_error(r, "Expected an integer");
	errno = 0;
	v = strtoll(start, &end, 10);
	if (errno == ERANGE)
		summary_syntax_error(r, "Integer out of range");
	r->p = end;
	return (int64) v;
}

double
summary_read_float8(SummaryReader *r)
{
	char	   *end;
	double		v;

	skip_space(r);
	errno = 0;
	v = strtod(r->p, &end);
	if (end == r->p)
		summary_syntax_error(r, "Expected a number");
	if (errno == ERANGE && (v == 0.0 || isinf(v)))
		summary_syntax_error(r, "Number out of range");
	if (isnan(v) || isinf(v))
		summary_syntax_error(r, "Expected a finite number");
	r->p = end;
	return v;
}

/* A quoted exact decimal such as "-12.3400". */
void
summary_read_decimal(SummaryReader *r, int128 *mantissa, int32 *scale)
{
	const char *close;
	char	   *text;

	summary_read_char(r, '"');
	close = strchr(r->p, '"');
	if (close == NULL)
		summary_syntax_error(r, "Unterminated decimal");
	text = pnstrdup(r->p, close - r->p);
	if (!exact_parse_decimal(text, mantissa, scale))
		summary_syntax_error(r, "Expected an exact decimal of at most 38 digits");
	pfree(text);
	r->p = close + 1;
}

void
summary_read_end(SummaryReader *r)
{
	summary_read_char(r, '}');
	skip_space(r);
	if (*r->p != '\0')
		summary_syntax_error(r, "Unexpected text after the summary");
}

void
summary_write_begin(StringInfo buf)
{
	appendStringInfo(buf, "{\"v\":%d", SUMMARY_VERSION);
}

void
summary_write_int64(StringInfo buf, const char *key, int64 value)
{
	appendStringInfo(buf, ",\"%s\":" INT64_FORMAT, key, value);
}

void
summary_write_float8(StringInfo buf, const char *key, double value)
{
	char		num[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(value, num);
	appendStringInfo(buf, ",\"%s\":%s", key, num);
}

void
summary_write_decimal(StringInfo buf, const char *key, int128 mantissa, int32 scale)
{
	appendStringInfo(buf, ",\"%s\":\"", key);
	exact_append_decimal(buf, mantissa, scale);
	appendStringInfoChar(buf, '"');
}

void
summary_write_end(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
}

void
summary_binary_error(const char *typname, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid external binary value for type %s", typname),
			 errdetail("%s", detail)));
}

void
summary_invalid(const char *typname, bool binary, const char *detail)
{
	ereport(ERROR,
			(errcode(binary ? ERRCODE_INVALID_BINARY_REPRESENTATION : ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("inconsistent %s value", typname),
			 errdetail("%s", detail)));
}

void *
summary_arg(Datum value, Size size, const char *typname)
{
	SummaryHeader *s = (SummaryHeader *) PG_DETOAST_DATUM(value);

	if (VARSIZE(s) != size)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s value is corrupt", typname),
				 errdetail("It has %u bytes; a %s has %zu.", (unsigned) VARSIZE(s), typname, size)));
	if (s->version < SUMMARY_OLDEST_VERSION || s->version > SUMMARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported %s version %d", typname, s->version),
				 errdetail("%s", versions_read())));
	return s;
}

void *
summary_state(FunctionCallInfo fcinfo, Size size, const char *typname)
{
	void	   *s;

	if (PG_ARGISNULL(0))
		return NULL;
	s = summary_arg(PG_GETARG_DATUM(0), size, typname);
	if (!AggCheckCallContext(fcinfo, NULL))
	{
		void	   *copy = palloc(size);

		memcpy(copy, s, size);
		s = copy;
	}
	return s;
}

void *
summary_alloc_state(FunctionCallInfo fcinfo, Size size)
{
	MemoryContext aggcxt;

	if (AggCheckCallContext(fcinfo, &aggcxt))
		return MemoryContextAllocZero(aggcxt, size);
	return palloc0(size);
}

void
summary_count_overflow(const char *typname)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("%s count is out of range", typname),
			 errdetail("Counts of a summary are at most 9223372036854775807 (2^63 - 1).")));
}

void
summary_remove_error(const char *typname, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cannot remove %s from a %s that does not hold one", what, typname),
			 errdetail("An inverse transition removes only rows its summary was built from.")));
}

static void
need(StringInfo msg, int nbytes, const char *typname)
{
	if (msg->len - msg->cursor < nbytes)
		summary_binary_error(typname, "The value is truncated.");
}

int
summary_recv_version(StringInfo msg, const char *typname)
{
	int			version;

	need(msg, 1, typname);
	version = pq_getmsgbyte(msg);
	if (version < SUMMARY_OLDEST_VERSION || version > SUMMARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported %s version %d", typname, version),
				 errdetail("%s", versions_read())));
	return version;
}

int64
summary_recv_int64(StringInfo msg, const char *typname)
{
	need(msg, 8, typname);
	return pq_getmsgint64(msg);
}

int32
summary_recv_int32(StringInfo msg, const char *typname)
{
	need(msg, 4, typname);
	return (int32) pq_getmsgint(msg, 4);
}

double
summary_recv_float8(StringInfo msg, const char *typname)
{
	need(msg, 8, typname);
	return pq_getmsgfloat8(msg);
}

void
summary_recv_end(StringInfo msg, const char *typname)
{
	if (msg->cursor != msg->len)
		summary_binary_error(typname, "The value has trailing bytes.");
}
