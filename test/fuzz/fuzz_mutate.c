/*-------------------------------------------------------------------------
 *
 * fuzz_mutate.c
 *	  Text inputs: a corpus value, an earlier accepted value, a random
 *	  well-formed value or random bytes, then 0 to 8 mutations (bit and byte
 *	  flips, digit edits, sign flips, extreme numbers, truncation,
 *	  duplication, splicing, white space, random tokens).  The result is
 *	  always valid UTF-8 without NUL, as the server guarantees of any text
 *	  it hands to an input function.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "mb/pg_wchar.h"

#include "fuzz_values.h"

/* numbers, as text, that sit on or just past a limit of some field */
static const char *const extreme_numbers[] = {
	"9223372036854775807", "-9223372036854775808", "9223372036854775808",
	"-9223372036854775809", "18446744073709551615", "18446744073709551616",
	"-1", "0", "1", "2", "-0", "00", "007", "4294967295", "4294967296",
	"2147483647", "2147483648", "-2147483648", "-2147483649",
	"64", "65", "63", "990", "991", "992", "517", "518", "365", "366", "729",
	"730", "3699", "3700", "3701", "988091", "988092", "316989541716344",
	"316989541716345", "315576000000000", "1000000", "86400000000",
	"99999999999999999999999999999999999999",
	"999999999999999999999999999999999999999",
	"-99999999999999999999999999999999999999",
	"170141183460469231731687303715884105727",
	"85070591730234615847396907784232501249",
	"0.00000000000000000000000000000000000001",
	"0.0000000000000000000000000000000000001",
	"9999999999999999999.9999999999999999999",
	"1.0000000000000000000000000000000000001",
	"0.99999999999999999999999999999999999999",
	"1e5", "1.5", "1.", ".5", "-", "--1", "+1", "0x10", "1e400", "NaN",
	"Infinity", "-Infinity", "1E-400", "0.000", "00000000000000000000000000000000000000001",
};

#define lengthof_(a) ((int) (sizeof(a) / sizeof((a)[0])))

static const char *const tokens[] = {
	"{", "}", "[", "]", ",", ":", "\"", "\"v\":1,", "\"v\"", "null", "true",
	"false", "{\"v\":1}", "[]", "[[", "]]", ",[1,1]", ",[0,1,0,0]", ",[1,1,0]",
	"[1,1],", "\"n\"", "\"sum\"", "\"won\"", "\"lost\"", "\"won_with_amount\"",
	"\"won_amount\"", "\"sum_us\"", "\"min_us\"", "\"max_us\"", "\"buckets\"",
	"\"days\"", "\"with_true\"", "\"with_false\"", "\"without_true\"",
	"\"without_false\"", "\"positions\"", "\\u0000", "\\\"", "\xc3\xa9",
	"\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\"\"", "\"1\"", "\"-0\"", "\" 1\"",
};

static const char *const keys[] = {
	"v", "n", "sum", "won", "lost", "won_with_amount", "won_amount", "sum_us",
	"min_us", "max_us", "buckets", "days", "with_true", "with_false",
	"without_true", "without_false", "positions",
};

static const char interesting_chars[] = "0123456789-.,:{}[]\" \t\n\r\ve+E";

/* a random number as text: an extreme one, or random digits */
void
random_number_text(FuzzRng *r, StringInfo out)
{
	switch (rng_below(r, 4))
	{
		case 0:
			appendStringInfoString(out, extreme_numbers[rng_below(r, lengthof_(extreme_numbers))]);
			break;
		case 1:
			appendStringInfo(out, INT64_FORMAT, (int64) rng_next(r));
			break;
		case 2:
			appendStringInfo(out, INT64_FORMAT, interesting_int64(r));
			break;
		default:
			{
				int			ndigits = 1 + rng_below(r, 41);
				int			point = rng_chance(r, 30) ? (int) rng_below(r, ndigits) : -1;

				if (rng_chance(r, 20))
					appendStringInfoChar(out, '-');
				for (int i = 0; i < ndigits; i++)
				{
					if (i == point && i > 0)
						appendStringInfoChar(out, '.');
					appendStringInfoChar(out, '0' + rng_below(r, 10));
				}
			}
	}
}

/* replaces [start, start + len) of buf with text */
static void
replace_range(StringInfo buf, int start, int len, const char *text, int textlen)
{
	StringInfoData t;

	initStringInfo(&t);
	appendBinaryStringInfo(&t, buf->data, start);
	appendBinaryStringInfo(&t, text, textlen);
	appendBinaryStringInfo(&t, buf->data + start + len, buf->len - start - len);
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, t.data, t.len);
	pfree(t.data);
}

static void
insert_text(StringInfo buf, int at, const char *text)
{
	replace_range(buf, at, 0, text, strlen(text));
}

/* the start of the k-th number (maximal run of -, digits and .), or -1 */
static int
find_number(FuzzRng *r, StringInfo buf, int *len)
{
	int			starts[64];
	int			lens[64];
	int			n = 0;

	for (int i = 0; i < buf->len && n < 64;)
	{
		if (isdigit((unsigned char) buf->data[i]) || buf->data[i] == '-')
		{
			int			j = i;

			while (j < buf->len && (isdigit((unsigned char) buf->data[j]) ||
									buf->data[j] == '-' || buf->data[j] == '.'))
				j++;
			starts[n] = i;
			lens[n++] = j - i;
			i = j;
		}
		else
			i++;
	}
	if (n == 0)
		return -1;
	n = rng_below(r, n);
	*len = lens[n];
	return starts[n];
}

/* a corpus value or an earlier accepted one; NULL when there is neither */
const FuzzValue *
pick_value(FuzzRng *r, FuzzPool *pool)
{
	if (pool->nrecent > 0 && (pool->ncorpus == 0 || rng_chance(r, 50)))
		return &pool->recent[rng_below(r, pool->nrecent)];
	if (pool->ncorpus > 0)
		return &pool->corpus[rng_below(r, pool->ncorpus)];
	return NULL;
}

static void
mutate_text_once(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo buf)
{
	int			pos = buf->len > 0 ? rng_below(r, buf->len + 1) : 0;
	int			len;
	char		c[2] = {0, 0};

	switch (rng_below(r, 16))
	{
		case 0:				/* flip a bit */
			if (buf->len > 0)
				buf->data[rng_below(r, buf->len)] ^= 1 << rng_below(r, 8);
			break;
		case 1:				/* replace a byte */
			if (buf->len > 0)
				buf->data[rng_below(r, buf->len)] =
					rng_chance(r, 70) ? interesting_chars[rng_below(r, sizeof(interesting_chars) - 1)]
					: (char) (1 + rng_below(r, 255));
			break;
		case 2:				/* insert a byte */
			c[0] = rng_chance(r, 70) ? interesting_chars[rng_below(r, sizeof(interesting_chars) - 1)]
				: (char) (1 + rng_below(r, 255));
			insert_text(buf, pos, c);
			break;
		case 3:				/* delete a range */
			len = 1 + rng_below(r, 8);
			if (pos + len <= buf->len)
				replace_range(buf, pos, len, "", 0);
			break;
		case 4:				/* edit a digit */
			if ((pos = find_number(r, buf, &len)) >= 0)
			{
				int			at = pos + rng_below(r, len);

				if (rng_chance(r, 60))
					buf->data[at] = '0' + rng_below(r, 10);
				else if (rng_chance(r, 50))
					insert_text(buf, at, rng_chance(r, 50) ? "9" : "0");
				else
					replace_range(buf, at, 1, "", 0);
			}
			break;
		case 5:				/* flip a sign */
			if ((pos = find_number(r, buf, &len)) >= 0)
			{
				if (buf->data[pos] == '-')
					replace_range(buf, pos, 1, "", 0);
				else
					insert_text(buf, pos, "-");
			}
			break;
		case 6:				/* an extreme number in place of one */
		case 7:
			if ((pos = find_number(r, buf, &len)) >= 0)
			{
				StringInfoData num;

				initStringInfo(&num);
				random_number_text(r, &num);
				replace_range(buf, pos, len, num.data, num.len);
			}
			break;
		case 8:				/* truncate */
			if (buf->len > 0)
				buf->len = rng_below(r, buf->len);
			buf->data[buf->len] = '\0';
			break;
		case 9:				/* duplicate a chunk */
			if (buf->len > 0)
			{
				int			from = rng_below(r, buf->len);
				int			n = 1 + rng_below(r, Min(buf->len - from, 64));
				char	   *chunk = pnstrdup(buf->data + from, n);

				insert_text(buf, pos, chunk);
			}
			break;
		case 10:			/* splice with another value of any type */
			{
				const FuzzValue *v = pick_value(r, &pools[rng_below(r, FT_NTYPES)]);

				if (v != NULL)
				{
					int			vlen = strlen(v->text);
					int			cut = rng_below(r, vlen + 1);

					buf->len = pos;
					buf->data[pos] = '\0';
					appendStringInfoString(buf, v->text + cut);
				}
			}
			break;
		case 11:			/* white space */
			{
				static const char *const ws[] = {" ", "\t", "\n", "\r", "\v", "\f", "   ", "\n\t "};

				insert_text(buf, pos, ws[rng_below(r, lengthof_(ws))]);
			}
			break;
		case 12:			/* a random token */
			insert_text(buf, pos, tokens[rng_below(r, lengthof_(tokens))]);
			break;
		case 13:			/* repeat an element of an array */
			{
				char	   *open = NULL;

				for (int tries = 0; tries < 4 && open == NULL; tries++)
				{
					char	   *p = strchr(buf->data + rng_below(r, buf->len + 1), '[');

					if (p != NULL && p[1] != '[' && p[1] != ']')
						open = p;
				}
				if (open != NULL)
				{
					char	   *close = strchr(open, ']');

					if (close != NULL)
					{
						/* once, or now and then up to 2000 times */
						int			copies = rng_chance(r, 10) ? 1 + rng_below(r, 2000) : 1;
						StringInfoData elems;

						initStringInfo(&elems);
						for (int i = 0; i < copies; i++)
							appendStringInfo(&elems, "%.*s,", (int) (close - open + 1), open);
						insert_text(buf, open - buf->data, elems.data);
					}
				}
			}
			break;
		case 14:			/* another key in place of a key */
			{
				char	   *q = strchr(buf->data + rng_below(r, buf->len + 1), '"');
				char	   *e = q ? strchr(q + 1, '"') : NULL;

				if (e != NULL)
				{
					const char *k = keys[rng_below(r, lengthof_(keys))];

					replace_range(buf, q + 1 - buf->data, e - q - 1, k, strlen(k));
				}
			}
			break;
		default:			/* a run of random printable bytes */
			{
				int			n = 1 + rng_below(r, 16);

				for (int i = 0; i < n; i++)
				{
					c[0] = (char) (32 + rng_below(r, 95));
					insert_text(buf, pos, c);
				}
			}
	}
}

/*
 * The fields of each type's text form, in order: I an integer, D a quoted
 * decimal, and arrays of 2, 3 or 4 integers per element (A2, A3, A4).
 */
static const char *const text_layout[FT_NTYPES] = {
	[FT_WEIGHTED_SUM] = "n:I sum:D",
	[FT_WINLOSS] = "won:I lost:I won_with_amount:I won_amount:D",
	[FT_DURATION] = "n:I sum_us:D min_us:I max_us:I buckets:2",
	[FT_SURVIVAL] = "n:I days:4",
	[FT_LIFT] = "with_true:I with_false:I without_true:I without_false:I",
	[FT_FUNNEL] = "positions:3",
};

static void
random_small_or_number(FuzzRng *r, StringInfo out)
{
	if (rng_chance(r, 60))
		appendStringInfo(out, INT64_FORMAT, random_count(r));
	else
		random_number_text(r, out);
}

/* a well-formed value of the type with random field values */
static void
random_text_value(FuzzRng *r, FuzzType t, StringInfo out)
{
	char	   *layout = pstrdup(text_layout[t]);
	char	   *save = NULL;

	appendStringInfoString(out, "{\"v\":");
	if (rng_chance(r, 90))
		appendStringInfoChar(out, '1');
	else
		random_number_text(r, out);
	for (char *f = strtok_r(layout, " ", &save); f != NULL; f = strtok_r(NULL, " ", &save))
	{
		char	   *colon = strchr(f, ':');

		appendStringInfo(out, ",\"%.*s\":", (int) (colon - f), f);
		if (colon[1] == 'I')
			random_small_or_number(r, out);
		else if (colon[1] == 'D')
		{
			appendStringInfoChar(out, '"');
			random_small_or_number(r, out);
			appendStringInfoChar(out, '"');
		}
		else
		{
			int			width = colon[1] - '0';
			int			n = rng_below(r, 6);

			appendStringInfoChar(out, '[');
			for (int e = 0; e < n; e++)
			{
				appendStringInfoString(out, e > 0 ? ",[" : "[");
				for (int k = 0; k < width; k++)
				{
					if (k > 0)
						appendStringInfoChar(out, ',');
					random_small_or_number(r, out);
				}
				appendStringInfoChar(out, ']');
			}
			appendStringInfoChar(out, ']');
		}
	}
	appendStringInfoChar(out, '}');
}

/*
 * What the server guarantees of text handed to an input function: no NUL
 * and valid in the database encoding (UTF-8 here).  A NUL or a byte that
 * does not start a valid character becomes a random printable character.
 */
static void
sanitize_text(FuzzRng *r, StringInfo buf)
{
	for (int i = 0; i < buf->len;)
	{
		int			l;

		if (buf->data[i] == '\0')
			buf->data[i] = (char) (32 + rng_below(r, 95));
		l = pg_encoding_verifymbchar(PG_UTF8, buf->data + i, buf->len - i);
		if (l < 1)
		{
			buf->data[i] = (char) (32 + rng_below(r, 95));
			l = 1;
		}
		i += l;
	}
}

bool
make_text_input(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo out)
{
	uint64		source = rng_below(r, 100);
	const FuzzValue *base = NULL;
	int			nmut;

	resetStringInfo(out);
	if (source < 8)
	{
		/* random bytes, biased towards the characters of the syntax */
		int			n = rng_below(r, 200);

		for (int i = 0; i < n; i++)
			appendStringInfoChar(out, rng_chance(r, 50)
								 ? interesting_chars[rng_below(r, sizeof(interesting_chars) - 1)]
								 : (char) (1 + rng_below(r, 255)));
	}
	else if (source < 25 || (base = pick_value(r, &pools[t])) == NULL)
		random_text_value(r, t, out);
	else
		appendStringInfoString(out, base->text);

	/* 0 to 8 mutations, fewer more often; none for a tenth of the inputs */
	nmut = rng_chance(r, 10) ? 0 : 1;
	while (nmut > 0 && nmut < 8 && rng_chance(r, 50))
		nmut++;
	for (int i = 0; i < nmut; i++)
		mutate_text_once(r, t, pools, out);
	sanitize_text(r, out);
	return base != NULL && nmut == 0;
}
