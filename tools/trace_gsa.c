/* GSA's own records: ATTENTION (the host's decision per recognised attention launch), SELECT
 * (kept/total blocks per sequence, from the GPU) and BLOCKS (kept-block bitmaps), folded
 * into per-kernel decisions, per-layer aggregates and the churn between consecutive bitmaps
 * of the same (layer, sequence index). Format: preload/trace_format.h.
 *
 * Memory: one entry per distinct layer (at most GSA_TR_MAX_LAYERS), per kernel id named by
 * ATTENTION records (at most GSA_TR_MAX_ATTN_KERNELS) and one previous bitmap per (layer,
 * sequence index) (at most GSA_TR_MAX_CHURN_KEYS keys and GSA_TR_MAX_CHURN_BYTES bytes);
 * records beyond a cap still count in the totals and are reported as unattributed or
 * untracked. Nothing grows with the number of records.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/trace_reader_impl.h"

#define ATTENTION_SIZE 24 /* u64 mono_ns, u32 kernel_id, i32 layer, i32 num_seqs, u8 x4 */
#define SELECT_SIZE 32    /* u64 mono_ns, u64 launch, u32 kernel_id, i32 layer, u32 num_seqs, u32 n */
#define BLOCKS_SIZE 44    /* u64 mono_ns, u64 launch, i32 layer, u32 seq, total, kept, sink,
			   * local, bitmap_bits */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)gsa_tr_le(p, 4);
}

static int short_payload(struct gsa_tr_reader *r, size_t len, size_t need)
{
	return gsa_tr_bad_record(r, "payload of %zu bytes is shorter than the %zu its fields need",
				 len, need);
}

/* The aggregates of this layer, created on first use; NULL beyond the cap (the caller then
 * counts the record as unattributed) or when out of memory (*oom set). */
static struct gsa_tr_layer *layer_of(struct gsa_tr_reader *r, int32_t layer, int *oom)
{
	struct gsa_tr_summary *s = r->s;
	struct u64_map_entry *e = u64_map_get(&r->layer_ids, (uint32_t)layer);
	if (e)
		return &s->layers[e->a];
	if (s->n_layers >= GSA_TR_MAX_LAYERS) {
		s->layer_records_unattributed++;
		return NULL;
	}
	if (s->n_layers == r->layers_cap) {
		size_t cap = r->layers_cap ? r->layers_cap * 2 : 64;
		struct gsa_tr_layer *p = realloc(s->layers, cap * sizeof(*p));
		if (!p) {
			*oom = 1;
			return NULL;
		}
		s->layers = p;
		r->layers_cap = cap;
	}
	if (u64_map_put(&r->layer_ids, (uint32_t)layer, s->n_layers, 0)) {
		*oom = 1;
		return NULL;
	}
	struct gsa_tr_layer *l = &s->layers[s->n_layers++];
	memset(l, 0, sizeof(*l));
	l->layer = layer;
	return l;
}

int gsa_tr_rec_attention(struct gsa_tr_reader *r, const uint8_t *p, size_t len)
{
	if (len < ATTENTION_SIZE)
		return short_payload(r, len, ATTENTION_SIZE);
	struct gsa_tr_summary *s = r->s;
	gsa_tr_note_time(r, gsa_tr_le(p, 8));
	uint32_t kid = le32(p + 8);
	int32_t layer = (int32_t)le32(p + 12), num_seqs = (int32_t)le32(p + 16);
	uint8_t reason = p[20], captured = p[21];
	r->ev.u.attention.kernel_id = kid;
	r->ev.u.attention.layer = layer;
	r->ev.u.attention.num_seqs = num_seqs;
	r->ev.u.attention.reason = reason;
	r->ev.u.attention.captured = captured;
	unsigned slot = reason < GSA_TR_REASONS ? reason : GSA_TR_REASON_OTHER;
	s->attention_records++;
	s->attention_by_reason[slot]++;
	s->attention_captured += captured != 0;

	int oom = 0;
	struct gsa_tr_layer *l = layer_of(r, layer, &oom);
	if (oom)
		return gsa_tr_oom(r);
	if (l) {
		l->decisions++;
		l->rewritten += reason == 0;
	}

	struct u64_map_entry *e = u64_map_get(&r->attn_ids, kid);
	if (!e) {
		if (r->n_attn >= GSA_TR_MAX_ATTN_KERNELS) {
			s->attention_unattributed++;
			return 0;
		}
		if (r->n_attn == r->attn_cap) {
			size_t cap = r->attn_cap ? r->attn_cap * 2 : 16;
			struct gsa_tr_attn *a = realloc(r->attn, cap * sizeof(*a));
			if (!a)
				return gsa_tr_oom(r);
			r->attn = a;
			r->attn_cap = cap;
		}
		if (u64_map_put(&r->attn_ids, kid, r->n_attn, 0))
			return gsa_tr_oom(r);
		memset(&r->attn[r->n_attn], 0, sizeof(r->attn[0]));
		r->attn[r->n_attn].id = kid;
		e = u64_map_get(&r->attn_ids, kid);
		r->n_attn++;
	}
	struct gsa_tr_attn *a = &r->attn[e->a];
	a->decisions[slot]++;
	a->captured += captured != 0;
	return 0;
}

int gsa_tr_rec_select(struct gsa_tr_reader *r, const uint8_t *p, size_t len)
{
	if (len < SELECT_SIZE)
		return short_payload(r, len, SELECT_SIZE);
	uint32_t n = le32(p + 28);
	if ((uint64_t)n * 8 > len - SELECT_SIZE)
		return gsa_tr_bad_record(r, "%" PRIu32 " kept/total pairs need %" PRIu64 " bytes "
					 "but only %zu payload bytes are left", n,
					 (uint64_t)n * 8, len - SELECT_SIZE);
	struct gsa_tr_summary *s = r->s;
	gsa_tr_note_time(r, gsa_tr_le(p, 8));
	int32_t layer = (int32_t)le32(p + 20);
	uint32_t num_seqs = le32(p + 24);
	const uint8_t *pairs = p + SELECT_SIZE;
	uint64_t kept = 0, total = 0, ratio_n = 0;
	double ratio_sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = le32(pairs + 8 * i), t = le32(pairs + 8 * i + 4);
		kept += k;
		total += t;
		if (t) {
			ratio_sum += (double)k / t;
			ratio_n++;
		}
	}
	r->ev.u.select.launch = gsa_tr_le(p + 8, 8);
	r->ev.u.select.kernel_id = le32(p + 16);
	r->ev.u.select.layer = layer;
	r->ev.u.select.num_seqs = num_seqs;
	r->ev.u.select.n = n;
	r->ev.u.select.pairs = pairs;
	r->ev.u.select.kept = kept;
	r->ev.u.select.total = total;
	r->ev.u.select.gpu_start_ns = r->ev.u.select.select_ns = 0;
	if (len - SELECT_SIZE - (size_t)n * 8 >= 16) {
		/* Format 1.1: the selection's GPU clock start and duration follow the pairs. */
		uint64_t start = gsa_tr_le(pairs + 8 * (size_t)n, 8);
		uint64_t dur = gsa_tr_le(pairs + 8 * (size_t)n + 8, 8);
		r->ev.u.select.gpu_start_ns = start;
		r->ev.u.select.select_ns = dur;
		if (start && dur < (1ull << 40)) { /* a garbled duration is not summed */
			if (!s->select_timed || start < s->select_gpu_first)
				s->select_gpu_first = start;
			if (!s->select_timed || start + dur > s->select_gpu_last)
				s->select_gpu_last = start + dur;
			s->select_timed++;
			s->select_gpu_ns += dur;
		}
	}
	s->select_records++;
	s->select_seqs += n;
	s->select_kept += kept;
	s->select_total += total;
	if (num_seqs > n)
		s->select_seqs_unlisted += num_seqs - n;

	int oom = 0;
	struct gsa_tr_layer *l = layer_of(r, layer, &oom);
	if (oom)
		return gsa_tr_oom(r);
	if (l) {
		l->launches++;
		l->seqs += n;
		l->kept += kept;
		l->total += total;
		l->ratio_sum += ratio_sum;
		l->ratio_n += ratio_n;
	}
	return 0;
}

static unsigned popcount8(uint8_t x)
{
	return (unsigned)__builtin_popcount(x);
}

/* Compares cur (bits cb of a sequence of ct blocks) with the previous bitmap p. */
static void churn(struct gsa_tr_layer *l, const struct gsa_tr_prev *p, const uint8_t *cur,
		  uint32_t cb, uint32_t ct)
{
	uint32_t common = cb < p->nbits ? cb : p->nbits;
	uint64_t added = 0, kept = 0, removed = 0;
	uint32_t i = 0, full = common / 8;
	for (; i + 8 <= full; i += 8) {
		uint64_t c, q;
		memcpy(&c, cur + i, 8);
		memcpy(&q, p->bits + i, 8);
		added += (unsigned)__builtin_popcountll(c & ~q);
		removed += (unsigned)__builtin_popcountll(q & ~c);
		kept += (unsigned)__builtin_popcountll(c);
	}
	for (; i < full; i++) {
		added += popcount8(cur[i] & (uint8_t)~p->bits[i]);
		removed += popcount8(p->bits[i] & (uint8_t)~cur[i]);
		kept += popcount8(cur[i]);
	}
	if (common % 8) {
		uint8_t mask = (uint8_t)((1u << (common % 8)) - 1), c = cur[full] & mask,
			q = p->bits[full] & mask;
		added += popcount8(c & (uint8_t)~q);
		removed += popcount8(q & (uint8_t)~c);
		kept += popcount8(c);
	}
	/* Blocks this record has that did not exist in the previous step: newly kept. Blocks
	 * the previous record had but did not record (bits < total) are not compared. */
	for (uint32_t b = common > p->total ? common : p->total; b < cb; b++) {
		if (gsa_tr_bit(cur, b)) {
			added++;
			kept++;
		}
	}
	/* Blocks kept in the previous step that the sequence no longer has: a change. */
	for (uint32_t b = common > ct ? common : ct; b < p->nbits; b++)
		removed += gsa_tr_bit(p->bits, b);
	l->churn_steps++;
	l->churn_new += added;
	l->churn_kept += kept;
	l->churn_changed += added || removed;
}

/* Replaces the previous bitmap of p with this one; on failure p is left invalid (nbits 0,
 * total 0) so that the next record is not compared with a stale one. */
static int keep_prev(struct gsa_tr_reader *r, struct gsa_tr_prev *p, const uint8_t *bitmap,
		     uint32_t bits, uint32_t total)
{
	size_t bytes = ((size_t)bits + 7) / 8;
	if (bytes > p->cap) {
		uint64_t after = r->prev_bytes - p->cap + bytes;
		uint8_t *nb = after <= GSA_TR_MAX_CHURN_BYTES ? realloc(p->bits, bytes) : NULL;
		if (!nb) {
			r->prev_bytes -= p->cap;
			free(p->bits);
			memset(p, 0, sizeof(*p));
			return -1;
		}
		r->prev_bytes = after;
		p->bits = nb;
		p->cap = bytes;
	}
	if (bytes)
		memcpy(p->bits, bitmap, bytes);
	p->nbits = bits;
	p->total = total;
	return 0;
}

int gsa_tr_rec_blocks(struct gsa_tr_reader *r, const uint8_t *p, size_t len)
{
	if (len < BLOCKS_SIZE)
		return short_payload(r, len, BLOCKS_SIZE);
	int32_t layer = (int32_t)le32(p + 16);
	uint32_t seq = le32(p + 20), total = le32(p + 24), kept = le32(p + 28),
		 sink = le32(p + 32), local = le32(p + 36), bits = le32(p + 40);
	uint64_t bytes = ((uint64_t)bits + 7) / 8;
	if (bytes > len - BLOCKS_SIZE)
		return gsa_tr_bad_record(r, "a bitmap of %" PRIu32 " bits needs %" PRIu64 " bytes "
					 "but only %zu payload bytes are left", bits, bytes,
					 len - BLOCKS_SIZE);
	if (bits > total)
		return gsa_tr_bad_record(r, "bitmap_bits %" PRIu32 " is more than the %" PRIu32
					 " blocks of the sequence", bits, total);
	struct gsa_tr_summary *s = r->s;
	gsa_tr_note_time(r, gsa_tr_le(p, 8));
	const uint8_t *bitmap = p + BLOCKS_SIZE;
	r->ev.u.blocks.launch = gsa_tr_le(p + 8, 8);
	r->ev.u.blocks.layer = layer;
	r->ev.u.blocks.seq = seq;
	r->ev.u.blocks.total = total;
	r->ev.u.blocks.kept = kept;
	r->ev.u.blocks.sink = sink;
	r->ev.u.blocks.local = local;
	r->ev.u.blocks.bits = bits;
	r->ev.u.blocks.bitmap = bitmap;
	s->blocks_records++;

	int oom = 0;
	struct gsa_tr_layer *l = layer_of(r, layer, &oom);
	if (oom)
		return gsa_tr_oom(r);
	if (!l)
		return 0;
	l->blocks_records++;
	uint64_t key = (uint64_t)(uint32_t)layer << 32 | seq;
	struct u64_map_entry *e = u64_map_get(&r->churn_ids, key);
	if (!e) {
		if (r->n_prev >= GSA_TR_MAX_CHURN_KEYS) {
			s->churn_untracked++;
			return 0;
		}
		if (r->n_prev == r->prev_cap) {
			size_t cap = r->prev_cap ? r->prev_cap * 2 : 16;
			struct gsa_tr_prev *np = realloc(r->prev, cap * sizeof(*np));
			if (!np)
				return gsa_tr_oom(r);
			r->prev = np;
			r->prev_cap = cap;
		}
		if (u64_map_put(&r->churn_ids, key, r->n_prev, 0))
			return gsa_tr_oom(r);
		memset(&r->prev[r->n_prev], 0, sizeof(r->prev[0]));
		if (keep_prev(r, &r->prev[r->n_prev], bitmap, bits, total))
			s->churn_untracked++;
		r->n_prev++;
		return 0;
	}
	struct gsa_tr_prev *prev = &r->prev[e->a];
	/* A previous record that could not be kept (nbits 0 and total 0 from keep_prev's
	 * failure) would make every block look new: not compared. A real empty sequence has
	 * total 0 too; comparing with it is not meaningful either. */
	if (prev->nbits || prev->total)
		churn(l, prev, bitmap, bits, total);
	if (keep_prev(r, prev, bitmap, bits, total))
		s->churn_untracked++;
	return 0;
}

static int by_layer(const void *a, const void *b)
{
	const struct gsa_tr_layer *x = a, *y = b;
	return (x->layer > y->layer) - (x->layer < y->layer);
}

int gsa_tr_gsa_finish(struct gsa_tr_reader *r)
{
	struct gsa_tr_summary *s = r->s;
	for (size_t i = 0; i < r->n_attn; i++) {
		const struct gsa_tr_attn *a = &r->attn[i];
		struct u64_map_entry *e = u64_map_get(&r->kernel_ids, a->id);
		if (!e) {
			/* decisions about a kernel whose KERNEL record never came (dropped) */
			struct gsa_tr_kernel k = {.id = a->id, .handle_kind = GSA_HANDLE_UNKNOWN,
						  .param_count = GSA_TR_PARAMS_UNKNOWN};
			k.name = calloc(1, 1);
			k.adapter = calloc(1, 1);
			if (!k.name || !k.adapter) {
				free(k.name);
				free(k.adapter);
				return gsa_tr_oom(r);
			}
			if (gsa_tr_store_kernel(r, &k))
				return -1;
			e = u64_map_get(&r->kernel_ids, a->id);
		}
		struct gsa_tr_kernel *k = &s->kernels[e->a];
		memcpy(k->decisions, a->decisions, sizeof(k->decisions));
		k->decisions_captured = a->captured;
	}
	if (s->n_layers)
		qsort(s->layers, s->n_layers, sizeof(*s->layers), by_layer);
	return 0;
}

void gsa_tr_gsa_release(struct gsa_tr_reader *r)
{
	u64_map_free(&r->layer_ids);
	u64_map_free(&r->attn_ids);
	u64_map_free(&r->churn_ids);
	free(r->attn);
	r->attn = NULL;
	for (size_t i = 0; i < r->n_prev; i++)
		free(r->prev[i].bits);
	free(r->prev);
	r->prev = NULL;
	r->n_prev = r->n_attn = 0;
}
