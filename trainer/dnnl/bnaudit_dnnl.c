// bnaudit_dnnl: an ONNX Runtime custom-op library with two operators, the
// gradients of a 2-D convolution computed by oneDNN from tensors in ORT's
// NCHWc layout ([N, C/B, H, W, B], oneDNN's nChw{B}c).
//
// bnaudit.dnnl::ConvWeightGradBlocked, the weight gradient:
//   inputs:  X  float [N, C/B, H, W, B]
//            dY float [N, O/B, Ho, Wo, B]
//   output:  dW float [O, C, kh, kw]
//   dW[o, c, i, j] = Σ_{n,h,w} dY[n, o, h, w]·X[n, c, h·sh+i−pt, w·sw+j−pl].
//
// bnaudit.dnnl::ConvDataGradBlocked, the input gradient:
//   inputs:  dY float [N, O/B, Ho, Wo, B]
//            W  float [O, C, kh, kw]
//   attr:    input_hw [H, W] (the input's plane, which strides leave
//            ambiguous)
//   output:  dX float [N, C/B, H, W, B]
//   dX[n, c, y, x] = Σ_{o,i,j} dY[n, o, h, w]·W[o, c, i, j] over the h, w
//   with h·sh+i−pt = y and w·sw+j−pl = x.
//
// Both take kernel_shape [kh, kw], strides [sh, sw] (default 1), pads
// [pt, pl, pb, pr] (default 0) and threads (oneDNN's OpenMP team size,
// default OpenMP's).
//
// bnaudit.dnnl::BatchNormGradBlocked, BatchNorm's backward with batch
// statistics, by oneDNN's backward batch normalization:
//   inputs:  Xc  float [N, C/B, H, W, B]  the centred input x − μ_B
//            dY  float [N, C/B, H, W, B]
//            var float [C]                the batch's biased variance σ²_B
//            γ   float [C]
//   attrs:   epsilon (default 1e-5), threads
//   outputs: dX float [N, C/B, H, W, B], dγ float [C], dβ float [C]
//   with inv = 1/√(σ²_B + ε), x̂ = Xc·inv, M = N·H·W:
//   dβ = Σ dY, dγ = Σ dY·x̂, dX = γ·inv·(dY − dβ/M − x̂·dγ/M). The block B is read from the last dimension of the
// blocked input (8 or 16). One oneDNN primitive is built per input shape
// and kept in the kernel. See README.md for how to build it.

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "onnxruntime_c_api.h"

static const OrtApi *api;
static OrtCustomOp weight_op, data_op, bn_op;

#define DOMAIN "bnaudit.dnnl"
#define WEIGHT_GRAD "ConvWeightGradBlocked"
#define DATA_GRAD "ConvDataGradBlocked"
#define BN_GRAD "BatchNormGradBlocked"
#define OP_NAME (k->kind == K_DATA ? DATA_GRAD : k->kind == K_BN ? BN_GRAD : WEIGHT_GRAD)

enum { K_WEIGHT, K_DATA, K_BN };

// plan is a primitive for one shape.
struct plan {
	int64_t key[9];            // N, C, H, W, O, Ho, Wo, B, 0
	dnnl_primitive_t prim;     // backward weights, or backward data
	dnnl_memory_t src, ddst;   // user memories (handles set per run); src is dX for backward data
	dnnl_memory_t dw;          // primitive's (diff) weights (own buffer if reordered)
	dnnl_primitive_t reorder;  // dw ↔ user oihw, or NULL when dw is oihw
	dnnl_memory_t dw_user;     // oihw memory on ORT's tensor (when reordered)
	dnnl_memory_t scratch;     // the primitive's own scratchpad (see user_scratchpad)
	dnnl_memory_t bn[7];       // BN: mean (zeros, owned), variance, scale, diff src, diff scale, diff shift, shift (zeros, owned)
	struct plan *next;
};

struct kernel {
	int kind;                  // K_WEIGHT, K_DATA or K_BN
	float eps;                 // BatchNormGradBlocked's epsilon
	int64_t k[2], s[2], p[4];
	int64_t hw[2];             // input_hw (ConvDataGradBlocked)
	int64_t threads; // OpenMP threads of oneDNN's primitives (0: OpenMP's default)
	dnnl_engine_t eng;
	dnnl_stream_t st;
	pthread_mutex_t mu;
	struct plan *plans;
};

__attribute__((format(printf, 1, 2)))
static OrtStatus *failf(const char *fmt, ...) {
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return api->CreateStatus(ORT_FAIL, buf);
}

#define DNNL(x)                                                                             \
	do {                                                                                      \
		dnnl_status_t s_ = (x);                                                                 \
		if (s_ != dnnl_success) return failf("%s: oneDNN %s failed (status %d)", OP_NAME, #x, (int)s_); \
	} while (0)

#define ORT(x)                          \
	do {                                  \
		OrtStatus *s_ = (x);                \
		if (s_ != NULL) return s_;          \
	} while (0)

static void plan_free(struct plan *p) {
	if (p->prim) dnnl_primitive_destroy(p->prim);
	if (p->reorder) dnnl_primitive_destroy(p->reorder);
	if (p->src) dnnl_memory_destroy(p->src);
	if (p->ddst) dnnl_memory_destroy(p->ddst);
	if (p->dw) dnnl_memory_destroy(p->dw);
	if (p->dw_user) dnnl_memory_destroy(p->dw_user);
	if (p->scratch) dnnl_memory_destroy(p->scratch);
	for (int i = 0; i < 7; i++)
		if (p->bn[i]) dnnl_memory_destroy(p->bn[i]);
	free(p);
}

// user_scratchpad is a primitive attribute asking for the scratchpad to be
// passed in by the caller. oneDNN's default scratchpad is shared by all
// primitives (unless it was built for concurrent execution), which may then
// run in parallel only on the threads that created them; ORT calls a kernel
// from whichever thread runs its session, and reference models train side
// by side. Each plan keeps its own, used under the kernel's lock.
static dnnl_primitive_attr_t user_scratchpad(void) {
	dnnl_primitive_attr_t a = NULL;
	if (dnnl_primitive_attr_create(&a) != dnnl_success) return NULL;
	if (dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user) != dnnl_success) {
		dnnl_primitive_attr_destroy(a);
		return NULL;
	}
	return a;
}

// scratchpad_of allocates the scratchpad pd asks for into p->scratch.
static dnnl_status_t scratchpad_of(struct kernel *k, const_dnnl_primitive_desc_t pd, struct plan *p) {
	const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	if (md == NULL || dnnl_memory_desc_get_size(md) == 0) return dnnl_success;
	return dnnl_memory_create(&p->scratch, md, k->eng, DNNL_MEMORY_ALLOCATE);
}

// backward_pd makes the backward primitive descriptor of the op
// descriptor bd, with the forward one of fd as oneDNN's hint and a
// scratchpad of p's own; on failure *bpd is left NULL.
static dnnl_status_t backward_pd(struct kernel *k, const_dnnl_op_desc_t fd, const_dnnl_op_desc_t bd, struct plan *p, dnnl_primitive_desc_t *bpd) {
	dnnl_primitive_desc_t fpd = NULL;
	dnnl_status_t st = dnnl_primitive_desc_create(&fpd, fd, NULL, k->eng, NULL);
	dnnl_primitive_attr_t attr = st == dnnl_success ? user_scratchpad() : NULL;
	if (st == dnnl_success) st = attr ? dnnl_primitive_desc_create(bpd, bd, attr, k->eng, fpd) : dnnl_out_of_memory;
	if (attr) dnnl_primitive_attr_destroy(attr);
	if (fpd) dnnl_primitive_desc_destroy(fpd);
	if (st == dnnl_success) st = scratchpad_of(k, *bpd, p);
	if (st != dnnl_success && *bpd) {
		dnnl_primitive_desc_destroy(*bpd);
		*bpd = NULL;
	}
	return st;
}

// build makes the primitive for one shape.
static OrtStatus *build(struct kernel *k, const int64_t key[9], struct plan *p) {
	int64_t n = key[0], c = key[1], h = key[2], w = key[3], o = key[4], ho = key[5], wo = key[6], b = key[7];
	dnnl_format_tag_t tag = b == 16 ? dnnl_nChw16c : b == 8 ? dnnl_nChw8c : dnnl_format_tag_undef;
	if (tag == dnnl_format_tag_undef) return failf("%s: block %lld is neither 8 nor 16", OP_NAME, (long long)b);
	dnnl_dims_t sd = {n, c, h, w}, wd = {o, c, k->k[0], k->k[1]}, dd = {n, o, ho, wo};
	dnnl_dims_t strides = {k->s[0], k->s[1]}, pl = {k->p[0], k->p[1]}, pr = {k->p[2], k->p[3]};
	dnnl_memory_desc_t s_md, d_md, w_any, w_plain;
	DNNL(dnnl_memory_desc_init_by_tag(&s_md, 4, sd, dnnl_f32, tag));
	DNNL(dnnl_memory_desc_init_by_tag(&d_md, 4, dd, dnnl_f32, tag));
	DNNL(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
	DNNL(dnnl_memory_desc_init_by_tag(&w_plain, 4, wd, dnnl_f32, dnnl_oihw));

	// oneDNN wants a forward primitive descriptor as a hint for backward ones.
	dnnl_convolution_desc_t fd, bd;
	dnnl_primitive_desc_t bpd = NULL;
	DNNL(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &s_md, &w_any, NULL, &d_md, strides, pl, pr));
	if (k->kind == K_DATA) {
		DNNL(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &s_md, &w_any, &d_md, strides, pl, pr));
	} else {
		DNNL(dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &s_md, &w_any, NULL, &d_md, strides, pl, pr));
	}
	dnnl_status_t st = backward_pd(k, &fd, &bd, p, &bpd);
	if (st != dnnl_success) {
		return failf("%s: oneDNN has no backward %s convolution for this shape (status %d)", OP_NAME, k->kind == K_DATA ? "data" : "weights", (int)st);
	}
	const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(bpd, k->kind == K_DATA ? dnnl_query_weights_md : dnnl_query_diff_weights_md, 0);
	st = dnnl_primitive_create(&p->prim, bpd);
	if (st == dnnl_success) st = dnnl_memory_create(&p->src, &s_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success) st = dnnl_memory_create(&p->ddst, &d_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success && dnnl_memory_desc_equal(dw_md, &w_plain)) {
		st = dnnl_memory_create(&p->dw, &w_plain, k->eng, DNNL_MEMORY_NONE);
	} else if (st == dnnl_success) {
		dnnl_primitive_desc_t rpd = NULL;
		st = dnnl_memory_create(&p->dw, dw_md, k->eng, DNNL_MEMORY_ALLOCATE);
		if (st == dnnl_success) st = dnnl_memory_create(&p->dw_user, &w_plain, k->eng, DNNL_MEMORY_NONE);
		if (st == dnnl_success && k->kind == K_DATA) st = dnnl_reorder_primitive_desc_create(&rpd, &w_plain, k->eng, dw_md, k->eng, NULL);
		else if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, dw_md, k->eng, &w_plain, k->eng, NULL);
		if (st == dnnl_success) st = dnnl_primitive_create(&p->reorder, rpd);
		if (rpd) dnnl_primitive_desc_destroy(rpd);
	}
	dnnl_primitive_desc_destroy(bpd);
	if (st != dnnl_success) return failf("%s: oneDNN setup failed (status %d)", OP_NAME, (int)st);
	memcpy(p->key, key, sizeof p->key);
	return NULL;
}

// build_bn makes the backward batch normalization for one shape: key is N,
// C, H, W, B.
static OrtStatus *build_bn(struct kernel *k, const int64_t key[9], struct plan *p) {
	int64_t n = key[0], c = key[1], h = key[2], w = key[3], b = key[7];
	dnnl_format_tag_t tag = b == 16 ? dnnl_nChw16c : b == 8 ? dnnl_nChw8c : dnnl_format_tag_undef;
	if (tag == dnnl_format_tag_undef) return failf("%s: block %lld is neither 8 nor 16", OP_NAME, (long long)b);
	dnnl_dims_t dd = {n, c, h, w}, cd = {c};
	dnnl_memory_desc_t d_md, c_md;
	DNNL(dnnl_memory_desc_init_by_tag(&d_md, 4, dd, dnnl_f32, tag));
	DNNL(dnnl_memory_desc_init_by_tag(&c_md, 1, cd, dnnl_f32, dnnl_a));
	unsigned flags = dnnl_use_scale | dnnl_use_shift;
	dnnl_batch_normalization_desc_t fd, bd;
	dnnl_primitive_desc_t bpd = NULL;
	DNNL(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &d_md, k->eps, flags));
	DNNL(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &d_md, &d_md, k->eps, flags));
	dnnl_status_t st = backward_pd(k, &fd, &bd, p, &bpd);
	if (st != dnnl_success) {
		return failf("%s: oneDNN has no backward batch normalization for this shape (status %d)", OP_NAME, (int)st);
	}
	st = dnnl_primitive_create(&p->prim, bpd);
	dnnl_primitive_desc_destroy(bpd);
	if (st == dnnl_success) st = dnnl_memory_create(&p->src, &d_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success) st = dnnl_memory_create(&p->ddst, &d_md, k->eng, DNNL_MEMORY_NONE);
	for (int i = 0; i < 7 && st == dnnl_success; i++)
		st = dnnl_memory_create(&p->bn[i], i == 3 ? &d_md : &c_md, k->eng, i == 0 || i == 6 ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE);
	for (int i = 0; i < 7 && st == dnnl_success; i += 6) {
		// zeros: the mean (the input comes centred), and the shift, which
		// oneDNN asks for though dX does not depend on it
		void *z = NULL;
		st = dnnl_memory_get_data_handle(p->bn[i], &z);
		if (st == dnnl_success) memset(z, 0, (size_t)c * sizeof(float));
	}
	if (st != dnnl_success) return failf("%s: oneDNN setup failed (status %d)", OP_NAME, (int)st);
	memcpy(p->key, key, sizeof p->key);
	return NULL;
}

static OrtStatus *shape_of(const struct kernel *k, const OrtValue *v, int64_t *dims, size_t want, const char *what) {
	OrtTensorTypeAndShapeInfo *info;
	ORT(api->GetTensorTypeAndShape(v, &info));
	size_t rank = 0;
	OrtStatus *s = api->GetDimensionsCount(info, &rank);
	if (s == NULL && rank != want) s = failf("%s: %s has rank %zu, want %zu", OP_NAME, what, rank, want);
	if (s == NULL) s = api->GetDimensions(info, dims, want);
	api->ReleaseTensorTypeAndShapeInfo(info);
	return s;
}

// plan_for finds or builds k's plan for key; it returns with k->mu held
// unless it fails.
static OrtStatus *plan_for(struct kernel *k, const int64_t key[9], struct plan **out) {
	pthread_mutex_lock(&k->mu);
	struct plan *p = k->plans;
	while (p && memcmp(p->key, key, sizeof p->key) != 0) p = p->next;
	if (!p) {
		p = calloc(1, sizeof *p);
		OrtStatus *s = !p ? failf("%s: out of memory", OP_NAME) : k->kind == K_BN ? build_bn(k, key, p) : build(k, key, p);
		if (s) {
			if (p) plan_free(p);
			pthread_mutex_unlock(&k->mu);
			return s;
		}
		p->next = k->plans;
		k->plans = p;
	}
	*out = p;
	return NULL;
}

// compute_bn runs BatchNormGradBlocked.
static OrtStatus *compute_bn(struct kernel *k, OrtKernelContext *ctx) {
	if (k->threads > 0) omp_set_num_threads((int)k->threads);
	const OrtValue *in[4];
	for (int i = 0; i < 4; i++) ORT(api->KernelContext_GetInput(ctx, (size_t)i, &in[i]));
	int64_t xs[5], ys[5], vs[1], gs[1];
	ORT(shape_of(k, in[0], xs, 5, "Xc"));
	ORT(shape_of(k, in[1], ys, 5, "dY"));
	ORT(shape_of(k, in[2], vs, 1, "var"));
	ORT(shape_of(k, in[3], gs, 1, "scale"));
	int64_t b = xs[4], c = xs[1] * b;
	if (memcmp(xs, ys, sizeof xs) != 0 || vs[0] != c || gs[0] != c) return failf("%s: Xc, dY, var and scale disagree on their shapes", OP_NAME);
	int64_t key[9] = {xs[0], c, xs[2], xs[3], 0, 0, 0, b, 2};
	OrtValue *dx, *dg, *db;
	int64_t cdim[1] = {c};
	ORT(api->KernelContext_GetOutput(ctx, 0, xs, 5, &dx));
	ORT(api->KernelContext_GetOutput(ctx, 1, cdim, 1, &dg));
	ORT(api->KernelContext_GetOutput(ctx, 2, cdim, 1, &db));
	const void *x, *dy, *var, *g;
	void *dxp, *dgp, *dbp;
	ORT(api->GetTensorData(in[0], &x));
	ORT(api->GetTensorData(in[1], &dy));
	ORT(api->GetTensorData(in[2], &var));
	ORT(api->GetTensorData(in[3], &g));
	ORT(api->GetTensorMutableData(dx, &dxp));
	ORT(api->GetTensorMutableData(dg, &dgp));
	ORT(api->GetTensorMutableData(db, &dbp));
	struct plan *p;
	ORT(plan_for(k, key, &p));
	dnnl_status_t st = dnnl_memory_set_data_handle(p->src, (void *)x);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)dy);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->bn[1], (void *)var);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->bn[2], (void *)g);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->bn[3], dxp);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->bn[4], dgp);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->bn[5], dbp);
	if (st == dnnl_success) {
		dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_MEAN, p->bn[0]}, {DNNL_ARG_VARIANCE, p->bn[1]}, {DNNL_ARG_DIFF_DST, p->ddst},
		                          {DNNL_ARG_SCALE, p->bn[2]}, {DNNL_ARG_SHIFT, p->bn[6]}, {DNNL_ARG_DIFF_SRC, p->bn[3]}, {DNNL_ARG_DIFF_SCALE, p->bn[4]}, {DNNL_ARG_DIFF_SHIFT, p->bn[5]},
		                          {DNNL_ARG_SCRATCHPAD, p->scratch}};
		st = dnnl_primitive_execute(p->prim, k->st, p->scratch ? 10 : 9, args);
	}
	if (st == dnnl_success) st = dnnl_stream_wait(k->st);
	pthread_mutex_unlock(&k->mu);
	if (st != dnnl_success) return failf("%s: oneDNN execution failed (status %d)", OP_NAME, (int)st);
	return NULL;
}

static OrtStatus *compute(struct kernel *k, OrtKernelContext *ctx) {
	// oneDNN runs on OpenMP, whose team size is a property of the calling
	// thread (ORT calls from whichever thread runs the session). Set it
	// before a primitive is created as well as run: oneDNN splits the work
	// by the team size it sees at creation, and a primitive made for
	// another size than it runs with sums in another order.
	if (k->kind == K_BN) return compute_bn(k, ctx);
	if (k->threads > 0) omp_set_num_threads((int)k->threads);
	const OrtValue *in0, *in1;
	ORT(api->KernelContext_GetInput(ctx, 0, &in0));
	ORT(api->KernelContext_GetInput(ctx, 1, &in1));
	int64_t key[9];
	OrtValue *outv;
	const void *src_in = NULL, *ddst_in, *w_in = NULL;
	void *out;
	if (k->kind == K_DATA) {
		// dY [N, O/B, Ho, Wo, B], W [O, C, kh, kw] → dX [N, C/B, H, W, B]
		int64_t ys[5], ws[4];
		ORT(shape_of(k, in0, ys, 5, "dY"));
		ORT(shape_of(k, in1, ws, 4, "W"));
		int64_t b = ys[4];
		if (ws[0] != ys[1] * b || ws[2] != k->k[0] || ws[3] != k->k[1] || ws[1] % b != 0)
			return failf("%s: W %lldx%lldx%lldx%lld does not fit dY's %lld channels, the kernel or the block %lld", OP_NAME, (long long)ws[0], (long long)ws[1], (long long)ws[2], (long long)ws[3], (long long)(ys[1] * b), (long long)b);
		int64_t k9[9] = {ys[0], ws[1], k->hw[0], k->hw[1], ws[0], ys[2], ys[3], b, 1};
		memcpy(key, k9, sizeof key);
		int64_t xdims[5] = {ys[0], ws[1] / b, k->hw[0], k->hw[1], b};
		ORT(api->KernelContext_GetOutput(ctx, 0, xdims, 5, &outv));
		ORT(api->GetTensorData(in0, &ddst_in));
		ORT(api->GetTensorData(in1, &w_in));
	} else {
		// X [N, C/B, H, W, B], dY [N, O/B, Ho, Wo, B] → dW [O, C, kh, kw]
		int64_t xs[5], ys[5];
		ORT(shape_of(k, in0, xs, 5, "X"));
		ORT(shape_of(k, in1, ys, 5, "dY"));
		int64_t b = xs[4];
		if (ys[4] != b || xs[0] != ys[0]) return failf("%s: X %lldx..x%lld and dY %lldx..x%lld disagree on batch or block", OP_NAME, (long long)xs[0], (long long)b, (long long)ys[0], (long long)ys[4]);
		int64_t k9[9] = {xs[0], xs[1] * b, xs[2], xs[3], ys[1] * b, ys[2], ys[3], b, 0};
		memcpy(key, k9, sizeof key);
		int64_t wdims[4] = {key[4], key[1], k->k[0], k->k[1]};
		ORT(api->KernelContext_GetOutput(ctx, 0, wdims, 4, &outv));
		ORT(api->GetTensorData(in0, &src_in));
		ORT(api->GetTensorData(in1, &ddst_in));
	}
	ORT(api->GetTensorMutableData(outv, &out));

	struct plan *p;
	ORT(plan_for(k, key, &p));
	dnnl_status_t st;
	if (k->kind == K_DATA) {
		// W (plain) → the primitive's weights, then dX from dY and W
		st = dnnl_memory_set_data_handle(p->src, out);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)ddst_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->reorder ? p->dw_user : p->dw, (void *)w_in);
		if (st == dnnl_success && p->reorder) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->dw_user}, {DNNL_ARG_TO, p->dw}};
			st = dnnl_primitive_execute(p->reorder, k->st, 2, args);
		}
		if (st == dnnl_success) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->ddst}, {DNNL_ARG_WEIGHTS, p->dw}, {DNNL_ARG_SCRATCHPAD, p->scratch}};
			st = dnnl_primitive_execute(p->prim, k->st, p->scratch ? 4 : 3, args);
		}
	} else {
		st = dnnl_memory_set_data_handle(p->src, (void *)src_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)ddst_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->reorder ? p->dw_user : p->dw, out);
		if (st == dnnl_success) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->ddst}, {DNNL_ARG_DIFF_WEIGHTS, p->dw}, {DNNL_ARG_SCRATCHPAD, p->scratch}};
			st = dnnl_primitive_execute(p->prim, k->st, p->scratch ? 4 : 3, args);
		}
		if (st == dnnl_success && p->reorder) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->dw}, {DNNL_ARG_TO, p->dw_user}};
			st = dnnl_primitive_execute(p->reorder, k->st, 2, args);
		}
	}
	if (st == dnnl_success) st = dnnl_stream_wait(k->st);
	pthread_mutex_unlock(&k->mu);
	if (st != dnnl_success) return failf("%s: oneDNN execution failed (status %d)", OP_NAME, (int)st);
	return NULL;
}

static OrtStatus *attr(const struct kernel *k, const OrtKernelInfo *info, const char *name, int64_t *out, size_t want, int64_t dflt) {
	size_t n = want;
	OrtStatus *s = api->KernelInfoGetAttributeArray_int64(info, name, out, &n);
	if (s != NULL) {
		api->ReleaseStatus(s);
		if (dflt < 0) return failf("%s: attribute %s is required", OP_NAME, name);
		for (size_t i = 0; i < want; i++) out[i] = dflt;
		return NULL;
	}
	if (n != want) return failf("%s: attribute %s has %zu values, want %zu", OP_NAME, name, n, want);
	return NULL;
}

// kernel_finish gives k its oneDNN engine and stream (or frees it).
static OrtStatus *kernel_finish(struct kernel *k, void **out) {
	if (dnnl_engine_create(&k->eng, dnnl_cpu, 0) != dnnl_success || dnnl_stream_create(&k->st, k->eng, dnnl_stream_default_flags) != dnnl_success) {
		OrtStatus *s = failf("%s: cannot create oneDNN CPU engine", OP_NAME);
		if (k->st) dnnl_stream_destroy(k->st);
		if (k->eng) dnnl_engine_destroy(k->eng);
		free(k);
		return s;
	}
	pthread_mutex_init(&k->mu, NULL);
	*out = k;
	return NULL;
}

static OrtStatus *ORT_API_CALL create_kernel(const OrtCustomOp *op, const OrtApi *a, const OrtKernelInfo *info, void **out) {
	(void)a;
	struct kernel *k = calloc(1, sizeof *k);
	if (!k) return failf("bnaudit_dnnl: out of memory");
	k->kind = op == &data_op ? K_DATA : op == &bn_op ? K_BN : K_WEIGHT;
	if (k->kind == K_BN) {
		k->eps = 1e-5f;
		OrtStatus *t = api->KernelInfoGetAttribute_float(info, "epsilon", &k->eps);
		if (t != NULL) api->ReleaseStatus(t); // optional
		OrtStatus *u = api->KernelInfoGetAttribute_int64(info, "threads", &k->threads);
		if (u != NULL) {
			api->ReleaseStatus(u);
			k->threads = 0;
		}
		return kernel_finish(k, out);
	}
	OrtStatus *s = attr(k, info, "kernel_shape", k->k, 2, -1);
	if (!s) s = attr(k, info, "strides", k->s, 2, 1);
	if (!s) s = attr(k, info, "pads", k->p, 4, 0);
	if (!s && k->kind == K_DATA) s = attr(k, info, "input_hw", k->hw, 2, -1);
	if (!s) {
		OrtStatus *t = api->KernelInfoGetAttribute_int64(info, "threads", &k->threads);
		if (t != NULL) { // optional
			api->ReleaseStatus(t);
			k->threads = 0;
		}
	}
	if (s) {
		free(k);
		return s;
	}
	return kernel_finish(k, out);
}

static OrtStatus *ORT_API_CALL kernel_compute(void *k, OrtKernelContext *ctx) { return compute(k, ctx); }

static void ORT_API_CALL kernel_destroy(void *kp) {
	struct kernel *k = kp;
	while (k->plans) {
		struct plan *p = k->plans;
		k->plans = p->next;
		plan_free(p);
	}
	dnnl_stream_destroy(k->st);
	dnnl_engine_destroy(k->eng);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static const char *ORT_API_CALL op_name(const OrtCustomOp *op) { return op == &data_op ? DATA_GRAD : op == &bn_op ? BN_GRAD : WEIGHT_GRAD; }
static const char *ORT_API_CALL op_ep(const OrtCustomOp *op) { (void)op; return "CPUExecutionProvider"; }
static ONNXTensorElementDataType ORT_API_CALL op_float(const OrtCustomOp *op, size_t i) { (void)op; (void)i; return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
static size_t ORT_API_CALL op_inputs(const OrtCustomOp *op) { return op == &bn_op ? 4 : 2; }
static size_t ORT_API_CALL op_outputs(const OrtCustomOp *op) { return op == &bn_op ? 3 : 1; }
static OrtCustomOpInputOutputCharacteristic ORT_API_CALL op_required(const OrtCustomOp *op, size_t i) { (void)op; (void)i; return INPUT_OUTPUT_REQUIRED; }
static OrtMemType ORT_API_CALL op_mem(const OrtCustomOp *op, size_t i) { (void)op; (void)i; return OrtMemTypeDefault; }
static int ORT_API_CALL op_arity(const OrtCustomOp *op) { (void)op; return 1; }
static int ORT_API_CALL op_homogeneous(const OrtCustomOp *op) { (void)op; return 1; }
static int ORT_API_CALL op_start(const OrtCustomOp *op) { (void)op; return 1; }
static int ORT_API_CALL op_end(const OrtCustomOp *op) { (void)op; return 2147483647; }

static OrtCustomOpDomain *the_domain;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

static void op_init(OrtCustomOp *op) {
	op->version = ORT_API_VERSION;
	op->GetName = op_name;
	op->GetExecutionProviderType = op_ep;
	op->GetInputType = op_float;
	op->GetInputTypeCount = op_inputs;
	op->GetOutputType = op_float;
	op->GetOutputTypeCount = op_outputs;
	op->KernelDestroy = kernel_destroy;
	op->GetInputCharacteristic = op_required;
	op->GetOutputCharacteristic = op_required;
	op->GetInputMemoryType = op_mem;
	op->GetVariadicInputMinArity = op_arity;
	op->GetVariadicInputHomogeneity = op_homogeneous;
	op->GetVariadicOutputMinArity = op_arity;
	op->GetVariadicOutputHomogeneity = op_homogeneous;
	op->CreateKernelV2 = create_kernel;
	op->KernelComputeV2 = kernel_compute;
	op->GetStartVersion = op_start;
	op->GetEndVersion = op_end;
}

// RegisterCustomOps is what ORT's RegisterCustomOpsLibrary(_V2) calls. The
// domain is made once and shared by every session that registers it.
OrtStatus *ORT_API_CALL RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
	const OrtApi *a = base->GetApi(ORT_API_VERSION);
	if (a == NULL) return NULL;  // an older ORT: nothing to make a status with; the ops stay unknown
	pthread_mutex_lock(&reg_mu);
	OrtStatus *s = NULL;
	if (the_domain == NULL) {
		api = a;
		op_init(&weight_op);
		op_init(&data_op);
		op_init(&bn_op);
		s = api->CreateCustomOpDomain(DOMAIN, &the_domain);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &weight_op);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &data_op);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &bn_op);
		if (s != NULL && the_domain != NULL) {
			api->ReleaseCustomOpDomain(the_domain);
			the_domain = NULL;
		}
	}
	if (s == NULL) s = api->AddCustomOpDomain(options, the_domain);
	pthread_mutex_unlock(&reg_mu);
	return s;
}
