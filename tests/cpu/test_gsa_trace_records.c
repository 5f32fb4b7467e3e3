/* The reader on GSA's own records (ATTENTION, SELECT, BLOCKS): decoding, the visitor, the
 * per-kernel decisions and per-layer aggregates, the churn rules on hand-made bitmaps, the
 * caps that bound memory, malformed records; and the export's JSON string escaping. */
#include <stdint.h>
#include <stdlib.h>

#include "tests/cpu/check.h"
#include "tests/cpu/test_gsa_trace_util.h"
#include "tests/data/trace_writer.h"
#include "tools/chrome_export.h"
#include "tools/heatmap.h"
#include "tools/trace_reader.h"

/* ---- a visitor that records what it saw ---- */

struct seen {
	uint64_t by_type[16];
	uint64_t records;
	int stop_at;       /* return 1 at this record (1-based); 0: never */
	int fail_at;       /* return -1 at this record */
	struct gsa_tr_event attention[8];
	int n_attention;
	uint32_t pairs[8][2];
	int n_pairs;
	uint8_t bitmap0;   /* first byte of the first BLOCKS bitmap */
	uint32_t blocks_bits0;
	char log[64];
	uint64_t alloc_size, alloc_stream;
	int32_t alloc_device;
	uint8_t free_known;
	uint64_t process_start;
	uint64_t bytes_live_after_alloc;
};

static int see(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	struct seen *v = ctx;
	v->records++;
	v->by_type[ev->type < 16 ? ev->type : 0]++;
	switch (ev->type) {
	case GSA_REC_ATTENTION:
		if (v->n_attention < 8)
			v->attention[v->n_attention++] = *ev;
		break;
	case GSA_REC_SELECT:
		for (uint32_t i = 0; i < ev->u.select.n && v->n_pairs < 8; i++, v->n_pairs++)
			gsa_tr_select_pair(ev, i, &v->pairs[v->n_pairs][0], &v->pairs[v->n_pairs][1]);
		break;
	case GSA_REC_BLOCKS:
		if (v->by_type[GSA_REC_BLOCKS] == 1) {
			v->bitmap0 = ev->u.blocks.bits ? ev->u.blocks.bitmap[0] : 0;
			v->blocks_bits0 = ev->u.blocks.bits;
		}
		break;
	case GSA_REC_LOG:
		snprintf(v->log, sizeof(v->log), "%.*s", (int)ev->u.log.len, ev->u.log.message);
		break;
	case GSA_REC_ALLOC:
		v->alloc_size = ev->u.alloc.size;
		v->alloc_stream = ev->u.alloc.stream;
		v->alloc_device = ev->u.alloc.device;
		v->bytes_live_after_alloc = s->bytes_live;
		break;
	case GSA_REC_FREE:
		v->free_known = ev->u.free.known;
		break;
	case GSA_REC_PROCESS:
		v->process_start = ev->u.process.start_mono_ns;
		break;
	}
	if (v->fail_at && (int)v->records == v->fail_at)
		return -1;
	return v->stop_at && (int)v->records == v->stop_at ? 1 : 0;
}

static int read_mem(const struct tw *w, struct seen *v, struct gsa_tr_summary *s, char *err,
		    size_t errlen)
{
	FILE *f = fmemopen(w->b, w->n, "rb");
	struct gsa_tr_visitor vis = {v, see, NULL};
	int rc = gsa_tr_read_visit(f, "mem", v ? &vis : NULL, s, err, errlen);
	fclose(f);
	return rc;
}

/* a bitmap of up to 64 blocks from a list of block indices, -1 terminated */
static void bits_of(uint8_t *bm, size_t bytes, const int *blocks)
{
	memset(bm, 0, bytes);
	for (int i = 0; blocks[i] >= 0; i++)
		bm[blocks[i] / 8] |= (uint8_t)(1u << (blocks[i] % 8));
}

static void blocks_rec(struct tw *w, uint64_t t, int32_t layer, uint32_t seq, uint32_t total,
		       uint32_t bits, const int *blocks)
{
	uint8_t bm[16];
	bits_of(bm, sizeof(bm), blocks);
	uint32_t kept = 0;
	for (int i = 0; blocks[i] >= 0; i++)
		kept++;
	tw_blocks(w, t, 7, layer, seq, total, kept, 1, 2, bits, bm);
}

/* Format 1.1 SELECT records carry the selection's GPU time: the summary sums it and spans
 * the GPU clock from the first start to the last end; a garbled duration is not summed. */
static void test_select_gpu_time(void)
{
	static const uint32_t p[] = {3, 10};
	struct tw w = {0};
	tw_header(&w, 5, 1);
	tw_select(&w, 10, 1, 3, 0, 1, 1, p); /* 1.0 record: no time */
	tw_select_timed(&w, 20, 2, 3, 0, 1, 1, p, 1000000, 4000);
	tw_select_timed(&w, 30, 3, 3, 1, 1, 1, p, 1010000, 6000);
	tw_select_timed(&w, 40, 4, 3, 0, 1, 1, p, 1020000, 1ull << 50); /* garbled */
	tw_end_rec(&w, 50);
	struct gsa_tr_summary s;
	struct seen v = {0};
	char err[512];
	CHECK(read_mem(&w, &v, &s, err, sizeof(err)) == 0, "read: %s", err);
	CHECK_EQ_U64(s.select_records, 4);
	CHECK_EQ_U64(s.select_timed, 2);
	CHECK_EQ_U64(s.select_gpu_ns, 10000);
	CHECK_EQ_U64(s.select_gpu_first, 1000000);
	CHECK_EQ_U64(s.select_gpu_last, 1016000);
	gsa_tr_free(&s);
	tw_free(&w);
}

static void test_decode_and_aggregate(void)
{
	static const uint32_t p0[] = {10, 40, 40, 40};
	static const uint32_t p1[] = {0, 0};
	struct tw w = {0};
	tw_header(&w, 77, 1);
	tw_process(&w, 77, 1, 500, "exe", "v", "h");
	tw_kernel(&w, 3, GSA_HANDLE_FUNCTION, 0x1000, 0, NULL, "attn", "triton_unified");
	tw_kernel(&w, 4, GSA_HANDLE_FUNCTION, 0x2000, 0, NULL, "gemm", "");
	tw_attention(&w, 1000, 3, 0, 2, 0, 0);
	tw_attention(&w, 1100, 3, 1, 2, 0, 1);
	tw_attention(&w, 1200, 3, 0, 2, 2, 1);
	tw_attention(&w, 1300, 3, 1, 2, 5, 0);
	tw_attention(&w, 1400, 3, 1, 2, 200, 0); /* a reason this reader does not know */
	tw_attention(&w, 1500, 99, -1, 1, 3, 0); /* no KERNEL record; layer unknown */
	tw_select(&w, 2000, 11, 3, 0, 3, 2, p0);  /* 3 sequences, 2 listed */
	tw_select(&w, 2100, 12, 3, 1, 1, 1, p1);  /* total 0: not in the mean */
	tw_log(&w, 2200, 1, 7, "fail-open: something");
	tw_log(&w, 2300, 2, 0, "hello");
	tw_alloc(&w, 2400, 0xabc000, 4096, 0x55, 3, GSA_API_CU_MEM_ALLOC_ASYNC, 0x77);
	tw_free_rec(&w, 2500, 0xabc000, GSA_API_CU_MEM_ALLOC_ASYNC, 1);

	/* churn of layer 0, sequence 0 (worked out by hand, see the checks) */
	static const int r1[] = {0, 1, 9, -1}, r2[] = {0, 2, 9, 10, -1},
			 r4[] = {0, 2, 9, 10, 11, -1}, r5[] = {0, 15, -1}, r6[] = {0, 1, -1};
	blocks_rec(&w, 3000, 0, 0, 10, 10, r1);
	blocks_rec(&w, 3100, 0, 0, 11, 11, r2); /* +2 (1, new 10) -1: changed, 2 of 4 new */
	blocks_rec(&w, 3200, 0, 0, 11, 11, r2); /* same: 0 of 4 */
	blocks_rec(&w, 3300, 0, 0, 20, 12, r4); /* bits < total; 11 is new: 1 of 5 */
	blocks_rec(&w, 3400, 0, 0, 20, 20, r5); /* 15 not comparable: 0 of 1, changed */
	blocks_rec(&w, 3500, 0, 0, 5, 5, r6);   /* shrunk: 1 new of 2, 15 gone: changed */
	blocks_rec(&w, 3600, 0, 1, 10, 10, r1); /* another sequence: nothing to compare */
	tw_end_rec(&w, 4000);

	struct gsa_tr_summary s;
	struct seen v = {0};
	char err[512];
	int rc = read_mem(&w, &v, &s, err, sizeof(err));
	CHECK(rc == 0, "read: %s", err);

	/* the visitor saw every record, decoded */
	CHECK_EQ_U64(v.records, s.records);
	CHECK_EQ_U64(v.by_type[GSA_REC_ATTENTION], 6);
	CHECK_EQ_U64(v.by_type[GSA_REC_SELECT], 2);
	CHECK_EQ_U64(v.by_type[GSA_REC_BLOCKS], 7);
	CHECK_EQ_U64(v.process_start, 500);
	if (v.n_attention == 6) {
		CHECK_EQ_U64(v.attention[0].mono_ns, 1000);
		CHECK_EQ_U64(v.attention[1].u.attention.captured, 1);
		CHECK_EQ_U64(v.attention[2].u.attention.reason, 2);
		CHECK_EQ_U64(v.attention[5].u.attention.kernel_id, 99);
		CHECK(v.attention[5].u.attention.layer == -1, "layer -1");
		CHECK_EQ_U64(v.attention[5].u.attention.num_seqs, 1);
	}
	CHECK_EQ_U64(v.n_pairs, 3);
	CHECK(v.pairs[0][0] == 10 && v.pairs[0][1] == 40 && v.pairs[1][0] == 40 &&
	      v.pairs[2][1] == 0, "select pairs");
	CHECK_EQ_U64(v.bitmap0, 0x03);
	CHECK_EQ_U64(v.blocks_bits0, 10);
	CHECK_STR(v.log, "hello");
	CHECK_EQ_U64(v.alloc_size, 4096);
	CHECK_EQ_U64(v.alloc_stream, 0x77);
	CHECK_EQ_U64(v.alloc_device, 3);
	CHECK_EQ_U64(v.bytes_live_after_alloc, 4096);
	CHECK_EQ_U64(v.free_known, 1);

	/* totals */
	CHECK_EQ_U64(s.attention_records, 6);
	CHECK_EQ_U64(s.attention_by_reason[0], 2);
	CHECK_EQ_U64(s.attention_by_reason[2], 1);
	CHECK_EQ_U64(s.attention_by_reason[3], 1);
	CHECK_EQ_U64(s.attention_by_reason[5], 1);
	CHECK_EQ_U64(s.attention_by_reason[GSA_TR_REASON_OTHER], 1);
	CHECK_EQ_U64(s.attention_captured, 2);
	CHECK_EQ_U64(s.select_records, 2);
	CHECK_EQ_U64(s.select_seqs, 3);
	CHECK_EQ_U64(s.select_kept, 50);
	CHECK_EQ_U64(s.select_total, 80);
	CHECK_EQ_U64(s.select_seqs_unlisted, 1);
	CHECK_EQ_U64(s.blocks_records, 7);
	CHECK_EQ_U64(s.fail_open_logs, 1);
	CHECK_EQ_U64(s.first_mono_ns, 1000);
	CHECK_EQ_U64(s.last_mono_ns, 4000);

	/* decisions per kernel: kernel 99 got a placeholder */
	const struct gsa_tr_kernel *k = gsa_tr_find_kernel(&s, "attn");
	CHECK(k != NULL, "kernel attn");
	if (k) {
		CHECK_EQ_U64(k->decisions[0], 2);
		CHECK_EQ_U64(k->decisions[2], 1);
		CHECK_EQ_U64(k->decisions[5], 1);
		CHECK_EQ_U64(k->decisions[GSA_TR_REASON_OTHER], 1);
		CHECK_EQ_U64(k->decisions_captured, 2);
		CHECK_EQ_U64(gsa_tr_kernel_decisions(k), 5);
		CHECK(gsa_tr_kernel_recognised(k), "attn recognised");
	}
	k = gsa_tr_find_kernel(&s, "gemm");
	CHECK(k && !gsa_tr_kernel_recognised(k), "gemm passes through");
	CHECK_EQ_U64(s.n_kernels, 3);
	if (s.n_kernels == 3) {
		CHECK_EQ_U64(s.kernels[2].id, 99);
		CHECK_STR(s.kernels[2].name, "");
		CHECK_EQ_U64(s.kernels[2].decisions[3], 1);
		CHECK(gsa_tr_kernel_recognised(&s.kernels[2]), "99 recognised by its decision");
	}

	/* layers: -1, 0, 1, sorted */
	CHECK_EQ_U64(s.n_layers, 3);
	const struct gsa_tr_layer *l = gsa_tr_find_layer(&s, -1);
	CHECK(l && l->decisions == 1 && l->rewritten == 0 && l->launches == 0, "layer -1");
	l = gsa_tr_find_layer(&s, 0);
	CHECK(l != NULL, "layer 0");
	if (l) {
		CHECK_EQ_U64(l->decisions, 2);
		CHECK_EQ_U64(l->rewritten, 1);
		CHECK_EQ_U64(l->launches, 1);
		CHECK_EQ_U64(l->seqs, 2);
		CHECK_EQ_U64(l->kept, 50);
		CHECK_EQ_U64(l->total, 80);
		CHECK_EQ_U64(l->ratio_n, 2);
		CHECK(l->ratio_sum == 0.25 + 1.0, "ratio_sum %g", l->ratio_sum);
		CHECK_EQ_U64(l->blocks_records, 7);
		CHECK_EQ_U64(l->churn_steps, 5);
		CHECK_EQ_U64(l->churn_changed, 4);
		CHECK_EQ_U64(l->churn_new, 2 + 0 + 1 + 0 + 1);
		CHECK_EQ_U64(l->churn_kept, 4 + 4 + 5 + 1 + 2);
	}
	l = gsa_tr_find_layer(&s, 1);
	CHECK(l && l->launches == 1 && l->ratio_n == 0 && l->decisions == 3 && l->rewritten == 1,
	      "layer 1");
	CHECK(gsa_tr_find_layer(&s, 2) == NULL, "no layer 2");
	CHECK_EQ_U64(s.churn_untracked, 0);
	gsa_tr_free(&s);

	/* stopping early: success with what was read */
	struct seen stop = {.stop_at = 3};
	rc = read_mem(&w, &stop, &s, err, sizeof(err));
	CHECK(rc == 0 && s.records == 3 && stop.records == 3, "stop at 3: rc %d, %" PRIu64, rc,
	      s.records);
	gsa_tr_free(&s);
	/* failing: one line naming the record */
	struct seen fail = {.fail_at = 2};
	rc = read_mem(&w, &fail, &s, err, sizeof(err));
	CHECK(rc == 1, "fail at 2: rc %d", rc);
	CHECK_CONTAINS(err, "mem: stopped at byte ");
	CHECK(s.kernels == NULL && s.layers == NULL, "zeroed after failure");
	tw_free(&w);
}

static void expect_bad(const struct tw *w, const char *want)
{
	struct gsa_tr_summary s;
	char err[512];
	int rc = read_mem(w, NULL, &s, err, sizeof(err));
	CHECK(rc == 1, "rc %d for %s", rc, want);
	CHECK_CONTAINS(err, want);
	CHECK(strchr(err, '\n') == NULL, "one line: %s", err);
}

static void test_bad_records(void)
{
	struct tw w = {0};
	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_ATTENTION);
	tw_u64(&w, 1);
	tw_u32(&w, 1);
	tw_end(&w);
	expect_bad(&w, "mem: bad attention record at byte 32: payload of 12 bytes is shorter "
		   "than the 24 its fields need");
	tw_free(&w);

	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_SELECT);
	tw_u64(&w, 1);
	tw_u64(&w, 2);
	tw_u32(&w, 3);
	tw_u32(&w, 0);
	tw_u32(&w, 5);
	tw_u32(&w, 0xffffffffu); /* n */
	tw_u64(&w, 0);
	tw_end(&w);
	expect_bad(&w, "mem: bad select record at byte 32: 4294967295 kept/total pairs need "
		   "34359738360 bytes but only 8 payload bytes are left");
	tw_free(&w);

	uint8_t bm[4] = {0xff, 0xff, 0xff, 0xff};
	tw_header(&w, 1, 1);
	tw_blocks(&w, 1, 1, 0, 0, 100, 10, 1, 2, 32, bm);
	w.b[w.n - 4 - 4] = 0xff; /* bitmap_bits: 32 -> 0x...ff: beyond the payload */
	w.b[w.n - 4 - 3] = 0xff;
	expect_bad(&w, "mem: bad blocks record at byte 32: a bitmap of 65535 bits needs 8192 "
		   "bytes but only 4 payload bytes are left");
	tw_free(&w);

	tw_header(&w, 1, 1);
	tw_blocks(&w, 1, 1, 0, 0, 20, 10, 1, 2, 32, bm); /* 32 bits of a 20-block sequence */
	expect_bad(&w, "mem: bad blocks record at byte 32: bitmap_bits 32 is more than the 20 "
		   "blocks of the sequence");
	tw_free(&w);

	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_BLOCKS);
	tw_u64(&w, 1);
	tw_end(&w);
	expect_bad(&w, "mem: bad blocks record at byte 32: payload of 8 bytes is shorter than the "
		   "44 its fields need");
	tw_free(&w);
}

/* The caps: distinct layers, churn keys and churn bytes never grow without bound, and what
 * is beyond them is still counted. */
static void test_caps(void)
{
	static const uint32_t pair[] = {1, 2};
	struct tw w = {0};
	tw_header(&w, 1, 1);
	for (int32_t l = 0; l < 8192 + 8; l++)
		tw_select(&w, 1, 1, 1, l, 1, 1, pair);
	struct gsa_tr_summary s;
	char err[512];
	CHECK(read_mem(&w, NULL, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK_EQ_U64(s.n_layers, 8192);
	CHECK_EQ_U64(s.layer_records_unattributed, 8);
	CHECK_EQ_U64(s.select_records, 8200);
	CHECK_EQ_U64(s.select_kept, 8200);
	gsa_tr_free(&s);
	tw_free(&w);

	/* 65536 (layer, seq) keys are kept; the next ones are not compared */
	uint8_t bm[1] = {1};
	tw_header(&w, 1, 1);
	for (uint32_t q = 0; q < 65536 + 3; q++)
		tw_blocks(&w, 1, 1, 0, q, 1, 1, 0, 0, 1, bm);
	tw_blocks(&w, 1, 2, 0, 0, 1, 1, 0, 0, 1, bm);       /* compared */
	tw_blocks(&w, 1, 2, 0, 65536 + 1, 1, 1, 0, 0, 1, bm); /* not */
	CHECK(read_mem(&w, NULL, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK_EQ_U64(s.churn_untracked, 4);
	CHECK_EQ_U64(s.n_layers, 1);
	if (s.n_layers == 1) {
		CHECK_EQ_U64(s.layers[0].churn_steps, 1);
		CHECK_EQ_U64(s.layers[0].blocks_records, 65536 + 5);
	}
	gsa_tr_free(&s);
	tw_free(&w);

	/* 64 MiB of previous bitmaps at most: 65 sequences of 8 million blocks */
	uint32_t bits = (GSA_TRACE_MAX_PAYLOAD - 64) * 8;
	uint8_t *big = malloc(bits / 8);
	memset(big, 0x11, bits / 8);
	tw_header(&w, 1, 1);
	for (uint32_t q = 0; q < 66; q++)
		tw_blocks(&w, 1, 1, 5, q, bits, bits / 4, 0, 0, bits, big);
	tw_blocks(&w, 1, 2, 5, 0, bits, bits / 4, 0, 0, bits, big);  /* compared */
	tw_blocks(&w, 1, 2, 5, 65, bits, bits / 4, 0, 0, bits, big); /* not kept before */
	CHECK(read_mem(&w, NULL, &s, err, sizeof(err)) == 0, "%s", err);
	const struct gsa_tr_layer *l = gsa_tr_find_layer(&s, 5);
	CHECK(l && l->churn_steps == 1 && l->churn_new == 0 && l->churn_kept == bits / 4,
	      "big bitmaps compared once");
	CHECK(s.churn_untracked >= 2 && s.churn_untracked <= 4, "untracked %" PRIu64,
	      s.churn_untracked);
	gsa_tr_free(&s);
	tw_free(&w);
	free(big);
}

static void test_heatmap_classes(void)
{
	/* 10 blocks, sink 2, local 3, 8 recorded: 0 1 | 2 3 4 5 6 | 7 ; 8 9 not recorded */
	uint8_t bm[1];
	static const int kept[] = {0, 3, 6, 7, -1};
	bits_of(bm, 1, kept);
	static const enum gsa_hm_class want[] = {GSA_HM_SINK, GSA_HM_DROPPED, GSA_HM_DROPPED,
						 GSA_HM_KEPT, GSA_HM_DROPPED, GSA_HM_DROPPED,
						 GSA_HM_KEPT, GSA_HM_LOCAL, GSA_HM_UNREC,
						 GSA_HM_UNREC, GSA_HM_NONE};
	for (uint32_t b = 0; b < 11; b++)
		CHECK(gsa_heatmap_classify(b, 10, 2, 3, 8, bm) == want[b], "block %u: %d", b,
		      gsa_heatmap_classify(b, 10, 2, 3, 8, bm));
	/* a local window longer than the sequence: everything kept is local (or sink) */
	CHECK(gsa_heatmap_classify(3, 10, 2, 50, 8, bm) == GSA_HM_LOCAL, "long local");
	CHECK(gsa_heatmap_new(0, 0, 1, 10) == NULL, "too few columns");
	CHECK(gsa_heatmap_new(0, 0, 10, GSA_HM_MAX_CELLS_PER_AXIS + 1) == NULL, "too many rows");
}

/* The export's strings: escapes, control bytes, invalid UTF-8 replaced; the result parses. */
static void test_json_strings(void)
{
	static const char raw[] = "a\"b\\c\nd\te\x01" "f\x7f" "g\xc3\xa9h\xff" "i\xe2\x82" "j"
				  "\xed\xa0\x80" "k\xf0\x9f\x98\x80";
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	gsa_json_string(f, raw, sizeof(raw) - 1);
	fclose(f);
	CHECK_STR(buf, "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u007fg\xc3\xa9h?i??j???k\xf0\x9f\x98\x80\"");
	struct tu_json v;
	char err[200];
	CHECK(tu_json_parse(buf, n, &v, err, sizeof(err)) == 0, "parse: %s", err);
	CHECK(v.t == TJ_STR && strncmp(v.str, "a\"b\\c\nd\te\x01", 10) == 0, "decoded");
	tu_json_free(&v);
	free(buf);

	/* the test's own JSON parser refuses what it must */
	static const char *const bad[] = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "\"\\x\"",
					  "\"a\nb\"", "[1] 2", "{\"a\" 1}", "nul", "\"\xff\"",
					  "\"\\ud800\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(tu_json_parse(bad[i], strlen(bad[i]), &v, err, sizeof(err)) != 0,
		      "accepted bad JSON %s", bad[i]);
	}
	static const char good[] = " {\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\ud83d\\ude00\"],"
				   "\"b\":{}} ";
	CHECK(tu_json_parse(good, strlen(good), &v, err, sizeof(err)) == 0, "good: %s", err);
	const struct tu_json *a = tu_json_get(&v, "a");
	CHECK(a && a->t == TJ_ARR && a->n == 6 && a->items[1].num == -2500 &&
	      strcmp(a->items[5].str, "\xc3\xa9\xf0\x9f\x98\x80") == 0, "good parsed");
	tu_json_free(&v);

	/* and the XML checker likewise */
	static const char *const bad_xml[] = {"<a>", "<a></b>", "<a b=1/>", "<a b=\"<\"/>",
					      "<a>&foo;</a>", "<a/><b/>", "text<a/>",
					      "<a b=\"1\" b=\"2\"/>"};
	for (size_t i = 0; i < sizeof(bad_xml) / sizeof(bad_xml[0]); i++)
		CHECK(tu_xml_check(bad_xml[i], strlen(bad_xml[i]), NULL, err, sizeof(err)) != 0,
		      "accepted bad XML %s", bad_xml[i]);
	static const char good_xml[] = "<?xml version=\"1.0\"?>\n<!-- c --><a x='1' y=\"&amp;\">"
				       "t&#x41;<b/><c></c></a>\n";
	CHECK(tu_xml_check(good_xml, strlen(good_xml), NULL, err, sizeof(err)) == 0, "xml: %s",
	      err);
}

int main(void)
{
	test_select_gpu_time();
	test_decode_and_aggregate();
	test_bad_records();
	test_caps();
	test_heatmap_classes();
	test_json_strings();
	return check_report("test_gsa_trace_records");
}
