/*-------------------------------------------------------------------------
 *
 * fuzz_mutate_bin.c
 *	  Binary inputs (what COPY BINARY or a Bind message hands the receive
 *	  functions): a corpus value's send form, an earlier accepted value's, a
 *	  random well-formed message or random bytes, then 0 to 8 mutations
 *	  (bit and byte flips, extreme integers written over fields, truncation,
 *	  extension, duplication, splicing).
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz.h"

#include "fuzz_values.h"

/*
 * Each type's send form: B the version byte, Q an int64, L an int32, and
 * '*' an int32 element count followed by that many elements of the rest.
 */
static const char *const bin_layout[FT_NTYPES] = {
	[FT_WEIGHTED_SUM] = "BQLQQ",
	[FT_WINLOSS] = "BQQQLQQ",
	[FT_DURATION] = "BQQQQQ*LQ",
	[FT_SURVIVAL] = "BQ*LQQQ",
	[FT_LIFT] = "BQQQQ",
	[FT_FUNNEL] = "B*LQQ",
};

static void
put_be(StringInfo buf, uint64 v, int nbytes)
{
	for (int i = nbytes - 1; i >= 0; i--)
		appendStringInfoChar(buf, (char) (v >> (8 * i)));
}

static void
overwrite_be(StringInfo buf, int at, uint64 v, int nbytes)
{
	for (int i = 0; i < nbytes && at + i < buf->len; i++)
		buf->data[at + i] = (char) (v >> (8 * (nbytes - 1 - i)));
}

/* a field value: an int32 field gets small values more often */
static uint64
field_value(FuzzRng *r, char kind)
{
	int64		v = random_count(r);

	if (kind == 'L' && rng_chance(r, 50))
		v = (int64) rng_below(r, 1000);
	/* a 128-bit decimal's high half is mostly 0 (or -1 for a negative) */
	return (uint64) v;
}

static void
random_binary_value(FuzzRng *r, FuzzType t, StringInfo out)
{
	const char *p = bin_layout[t];

	for (; *p != '\0' && *p != '*'; p++)
	{
		if (*p == 'B')
			appendStringInfoChar(out, rng_chance(r, 90) ? 1 : (char) rng_next(r));
		else
			put_be(out, field_value(r, *p), *p == 'Q' ? 8 : 4);
	}
	if (*p == '*')
	{
		/* a few elements, or now and then up to 1100 (more than any type holds) */
		int			n = rng_chance(r, 5) ? rng_below(r, 1100) : rng_below(r, 7);

		put_be(out, rng_chance(r, 85) ? (uint64) n : (uint64) interesting_int64(r), 4);
		for (int e = 0; e < n; e++)
			for (const char *q = p + 1; *q != '\0'; q++)
				put_be(out, field_value(r, *q), *q == 'Q' ? 8 : 4);
	}
}

/* the offset of a random field of the fixed part of the type's form */
static int
random_field_offset(FuzzRng *r, FuzzType t, int *nbytes)
{
	const char *layout = bin_layout[t];
	int			nfields = strcspn(layout, "*");
	int			k = rng_below(r, nfields);
	int			off = 0;

	for (int i = 0; i < k; i++)
		off += layout[i] == 'B' ? 1 : layout[i] == 'L' ? 4 : 8;
	*nbytes = layout[k] == 'B' ? 1 : layout[k] == 'L' ? 4 : 8;
	return off;
}

static void
mutate_binary_once(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo buf)
{
	int			pos = buf->len > 0 ? rng_below(r, buf->len) : 0;
	int			n;

	switch (rng_below(r, 14))
	{
		case 0:				/* flip a bit */
			if (buf->len > 0)
				buf->data[pos] ^= 1 << rng_below(r, 8);
			break;
		case 1:				/* set a byte */
			{
				static const unsigned char b[] = {0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF};

				if (buf->len > 0)
					buf->data[pos] = rng_chance(r, 60) ? b[rng_below(r, sizeof(b))] : (char) rng_next(r);
			}
			break;
		case 2:				/* insert random bytes */
			{
				StringInfoData t2;

				n = 1 + rng_below(r, 8);
				initStringInfo(&t2);
				appendBinaryStringInfo(&t2, buf->data, pos);
				for (int i = 0; i < n; i++)
					appendStringInfoChar(&t2, (char) rng_next(r));
				appendBinaryStringInfo(&t2, buf->data + pos, buf->len - pos);
				resetStringInfo(buf);
				appendBinaryStringInfo(buf, t2.data, t2.len);
			}
			break;
		case 3:				/* delete a range */
			n = 1 + rng_below(r, 12);
			if (pos + n <= buf->len)
			{
				memmove(buf->data + pos, buf->data + pos + n, buf->len - pos - n);
				buf->len -= n;
			}
			break;
		case 4:				/* truncate */
			buf->len = buf->len > 0 ? rng_below(r, buf->len) : 0;
			break;
		case 5:				/* extend */
			n = 1 + rng_below(r, 40);
			for (int i = 0; i < n; i++)
				appendStringInfoChar(buf, rng_chance(r, 50) ? 0 : (char) rng_next(r));
			break;
		case 6:				/* an extreme int64 anywhere */
			overwrite_be(buf, pos, (uint64) interesting_int64(r), 8);
			break;
		case 7:				/* an extreme int32 anywhere */
			overwrite_be(buf, pos, (uint64) interesting_int64(r), 4);
			break;
		case 8:				/* an extreme value in a field of the fixed part */
		case 9:
			{
				int			nbytes;
				int			off = random_field_offset(r, t, &nbytes);

				overwrite_be(buf, off, rng_chance(r, 70) ? (uint64) interesting_int64(r) : rng_next(r), nbytes);
			}
			break;
		case 10:			/* duplicate a chunk at the end or in place */
			if (buf->len > 0)
			{
				int			len = 1 + rng_below(r, Min(buf->len - pos, 64));
				char	   *chunk = palloc(len);

				memcpy(chunk, buf->data + pos, len);
				appendBinaryStringInfo(buf, chunk, len);
			}
			break;
		case 11:			/* splice with another value of any type */
			{
				const FuzzValue *v = pick_value(r, &pools[rng_below(r, FT_NTYPES)]);

				if (v != NULL)
				{
					int			cut = rng_below(r, v->binlen + 1);

					buf->len = pos;
					appendBinaryStringInfo(buf, v->bin + cut, v->binlen - cut);
				}
			}
			break;
		case 12:			/* the version byte */
			if (buf->len > 0)
				buf->data[0] = rng_chance(r, 50) ? 0 : rng_chance(r, 50) ? 2 : (char) rng_next(r);
			break;
		default:			/* step a byte up or down */
			if (buf->len > 0)
				buf->data[pos] += rng_chance(r, 50) ? 1 : -1;
	}
}

bool
make_binary_input(FuzzRng *r, FuzzType t, FuzzPool *pools, StringInfo out)
{
	uint64		source = rng_below(r, 100);
	const FuzzValue *base = NULL;
	int			nmut;

	resetStringInfo(out);
	if (source < 8)
	{
		int			n = rng_below(r, 300);

		if (rng_chance(r, 50))
			appendStringInfoChar(out, 1);
		for (int i = 0; i < n; i++)
			appendStringInfoChar(out, rng_chance(r, 40) ? 0 : (char) rng_next(r));
	}
	else if (source < 25 || (base = pick_value(r, &pools[t])) == NULL)
		random_binary_value(r, t, out);
	else
		appendBinaryStringInfo(out, base->bin, base->binlen);

	nmut = rng_chance(r, 10) ? 0 : 1;
	while (nmut > 0 && nmut < 8 && rng_chance(r, 50))
		nmut++;
	for (int i = 0; i < nmut; i++)
		mutate_binary_once(r, t, pools, out);
	return base != NULL && nmut == 0;
}
