// convgrad: how fast oneDNN (Debian's libdnnl 2.6) runs the convolutions of
// a small ResNet step: forward, backward-data and backward-weights of each
// of the fixture's six convolutions (testdata/models/make_fixtures.py,
// SmallResNet) at one batch size, on the threads OpenMP is given. It is the
// feasibility measure for issue 14's "kernels of the field" lever: the
// per-convolution times to compare with the convolution and
// weight-gradient ops of bnaudit's step profile (BENCHMARKS.md).
//
// Two layouts: "any" lets oneDNN pick its blocked formats (the best case,
// no reorders counted), "plain" forces NCHW activations and OIHW weights,
// the tensors an ONNX Runtime custom op would receive.
//
//   gcc -O2 -o /tmp/convgrad bench/onednn/convgrad.c -ldnnl
//   OMP_NUM_THREADS=2 /tmp/convgrad 128
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x)                                                              \
	do {                                                                      \
		dnnl_status_t s_ = (x);                                               \
		if (s_ != dnnl_success) {                                             \
			fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #x, \
			        (int)s_);                                                 \
			exit(1);                                                          \
		}                                                                     \
	} while (0)

struct conv {
	const char *name;
	int cin, cout, k, stride, pad, h; // square input h×h
};

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static dnnl_memory_t alloc(dnnl_engine_t eng, const dnnl_memory_desc_t *md) {
	dnnl_memory_t m;
	CHECK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
	void *p;
	CHECK(dnnl_memory_get_data_handle(m, &p));
	size_t n = dnnl_memory_desc_get_size(md);
	for (size_t i = 0; i < n / 4; i++) ((float *)p)[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
	return m;
}

// timeit runs a primitive reps times after a warm-up and returns ms per run.
static double timeit(dnnl_primitive_t p, dnnl_stream_t st, int nargs, dnnl_exec_arg_t *args, int reps) {
	CHECK(dnnl_primitive_execute(p, st, nargs, args));
	CHECK(dnnl_stream_wait(st));
	double t0 = now();
	for (int i = 0; i < reps; i++) CHECK(dnnl_primitive_execute(p, st, nargs, args));
	CHECK(dnnl_stream_wait(st));
	return (now() - t0) * 1000.0 / reps;
}

static void one(dnnl_engine_t eng, dnnl_stream_t st, int n, struct conv c, int plain, double tot[3]) {
	int ho = (c.h + 2 * c.pad - c.k) / c.stride + 1;
	dnnl_dims_t src = {n, c.cin, c.h, c.h}, wei = {c.cout, c.cin, c.k, c.k}, dst = {n, c.cout, ho, ho};
	dnnl_dims_t strides = {c.stride, c.stride}, pad = {c.pad, c.pad};
	dnnl_memory_desc_t s_md, w_md, d_md;
	dnnl_format_tag_t at = plain ? dnnl_nchw : dnnl_format_tag_any, wt = plain ? dnnl_oihw : dnnl_format_tag_any;
	CHECK(dnnl_memory_desc_init_by_tag(&s_md, 4, src, dnnl_f32, at));
	CHECK(dnnl_memory_desc_init_by_tag(&w_md, 4, wei, dnnl_f32, wt));
	CHECK(dnnl_memory_desc_init_by_tag(&d_md, 4, dst, dnnl_f32, at));

	dnnl_convolution_desc_t fd, bdd, bwd;
	CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &s_md, &w_md, NULL, &d_md, strides, pad, pad));
	dnnl_primitive_desc_t fpd, bdpd, bwpd;
	CHECK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
	CHECK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &s_md, &w_md, &d_md, strides, pad, pad));
	CHECK(dnnl_primitive_desc_create(&bdpd, &bdd, NULL, eng, fpd));
	CHECK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &s_md, &w_md, NULL, &d_md, strides, pad, pad));
	CHECK(dnnl_primitive_desc_create(&bwpd, &bwd, NULL, eng, fpd));

	const dnnl_memory_desc_t *fs = dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0);
	const dnnl_memory_desc_t *fw = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *fdst = dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
	dnnl_memory_t ms = alloc(eng, fs), mw = alloc(eng, fw), md = alloc(eng, fdst);
	dnnl_memory_t mdd = alloc(eng, dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_dst_md, 0));
	dnnl_memory_t mds = alloc(eng, dnnl_primitive_desc_query_md(bdpd, dnnl_query_diff_src_md, 0));
	dnnl_memory_t mbw = alloc(eng, dnnl_primitive_desc_query_md(bdpd, dnnl_query_weights_md, 0));
	dnnl_memory_t mws = alloc(eng, dnnl_primitive_desc_query_md(bwpd, dnnl_query_src_md, 0));
	dnnl_memory_t mwd = alloc(eng, dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_dst_md, 0));
	dnnl_memory_t mdw = alloc(eng, dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 0));

	dnnl_primitive_t pf, pbd, pbw;
	CHECK(dnnl_primitive_create(&pf, fpd));
	CHECK(dnnl_primitive_create(&pbd, bdpd));
	CHECK(dnnl_primitive_create(&pbw, bwpd));
	dnnl_exec_arg_t af[] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
	dnnl_exec_arg_t abd[] = {{DNNL_ARG_DIFF_DST, mdd}, {DNNL_ARG_WEIGHTS, mbw}, {DNNL_ARG_DIFF_SRC, mds}};
	dnnl_exec_arg_t abw[] = {{DNNL_ARG_SRC, mws}, {DNNL_ARG_DIFF_DST, mwd}, {DNNL_ARG_DIFF_WEIGHTS, mdw}};
	int reps = 30;
	double f = timeit(pf, st, 3, af, reps), bd = timeit(pbd, st, 3, abd, reps), bw = timeit(pbw, st, 3, abw, reps);
	printf("| %s | %s | %dx%dx%d→%d s%d | %.2f | %.2f | %.2f |\n", plain ? "plain" : "any", c.name, c.cin, c.h, c.h, c.cout, c.stride, f, bd, bw);
	tot[0] += f;
	tot[1] += bd;
	tot[2] += bw;
	dnnl_primitive_destroy(pf);
	dnnl_primitive_destroy(pbd);
	dnnl_primitive_destroy(pbw);
	dnnl_memory_t all[] = {ms, mw, md, mdd, mds, mbw, mws, mwd, mdw};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dnnl_memory_destroy(all[i]);
	dnnl_primitive_desc_destroy(fpd);
	dnnl_primitive_desc_destroy(bdpd);
	dnnl_primitive_desc_destroy(bwpd);
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 128;
	struct conv convs[] = {
	    {"conv1", 1, 16, 3, 1, 1, 28},
	    {"layer1.conv1", 16, 16, 3, 1, 1, 28},
	    {"layer1.conv2", 16, 16, 3, 1, 1, 28},
	    {"layer2.conv1", 16, 32, 3, 2, 1, 28},
	    {"layer2.conv2", 32, 32, 3, 1, 1, 14},
	    {"layer2.downsample", 16, 32, 1, 2, 0, 28},
	};
	dnnl_engine_t eng;
	dnnl_stream_t st;
	CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
	CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
	printf("batch %d\n\n| layout | conv | shape | forward (ms) | backward data (ms) | backward weights (ms) |\n|---|---|---|---|---|---|\n", n);
	for (int plain = 0; plain < 2; plain++) {
		double tot[3] = {0, 0, 0};
		for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) one(eng, st, n, convs[i], plain, tot);
		printf("| %s | all six | | %.2f | %.2f | %.2f |\n", plain ? "plain" : "any", tot[0], tot[1], tot[2]);
	}
	dnnl_stream_destroy(st);
	dnnl_engine_destroy(eng);
	return 0;
}
