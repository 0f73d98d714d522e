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
// default OpenMP's). The block B is read from the last dimension of the
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
static OrtCustomOp weight_op, data_op;

#define DOMAIN "bnaudit.dnnl"
#define WEIGHT_GRAD "ConvWeightGradBlocked"
#define DATA_GRAD "ConvDataGradBlocked"
#define OP_NAME (k->data ? DATA_GRAD : WEIGHT_GRAD)

// plan is a primitive for one shape.
struct plan {
	int64_t key[9];            // N, C, H, W, O, Ho, Wo, B, 0
	dnnl_primitive_t prim;     // backward weights, or backward data
	dnnl_memory_t src, ddst;   // user memories (handles set per run); src is dX for backward data
	dnnl_memory_t dw;          // primitive's (diff) weights (own buffer if reordered)
	dnnl_primitive_t reorder;  // dw ↔ user oihw, or NULL when dw is oihw
	dnnl_memory_t dw_user;     // oihw memory on ORT's tensor (when reordered)
	struct plan *next;
};

struct kernel {
	int data;                  // 1: ConvDataGradBlocked, 0: ConvWeightGradBlocked
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
	free(p);
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
	dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
	DNNL(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &s_md, &w_any, NULL, &d_md, strides, pl, pr));
	DNNL(dnnl_primitive_desc_create(&fpd, &fd, NULL, k->eng, NULL));
	if (k->data) {
		DNNL(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &s_md, &w_any, &d_md, strides, pl, pr));
	} else {
		DNNL(dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &s_md, &w_any, NULL, &d_md, strides, pl, pr));
	}
	dnnl_status_t st = dnnl_primitive_desc_create(&bpd, &bd, NULL, k->eng, fpd);
	dnnl_primitive_desc_destroy(fpd);
	if (st != dnnl_success) return failf("%s: oneDNN has no backward %s convolution for this shape (status %d)", OP_NAME, k->data ? "data" : "weights", (int)st);
	const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(bpd, k->data ? dnnl_query_weights_md : dnnl_query_diff_weights_md, 0);
	st = dnnl_primitive_create(&p->prim, bpd);
	if (st == dnnl_success) st = dnnl_memory_create(&p->src, &s_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success) st = dnnl_memory_create(&p->ddst, &d_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success && dnnl_memory_desc_equal(dw_md, &w_plain)) {
		st = dnnl_memory_create(&p->dw, &w_plain, k->eng, DNNL_MEMORY_NONE);
	} else if (st == dnnl_success) {
		dnnl_primitive_desc_t rpd = NULL;
		st = dnnl_memory_create(&p->dw, dw_md, k->eng, DNNL_MEMORY_ALLOCATE);
		if (st == dnnl_success) st = dnnl_memory_create(&p->dw_user, &w_plain, k->eng, DNNL_MEMORY_NONE);
		if (st == dnnl_success && k->data) st = dnnl_reorder_primitive_desc_create(&rpd, &w_plain, k->eng, dw_md, k->eng, NULL);
		else if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, dw_md, k->eng, &w_plain, k->eng, NULL);
		if (st == dnnl_success) st = dnnl_primitive_create(&p->reorder, rpd);
		if (rpd) dnnl_primitive_desc_destroy(rpd);
	}
	dnnl_primitive_desc_destroy(bpd);
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

static OrtStatus *compute(struct kernel *k, OrtKernelContext *ctx) {
	// oneDNN runs on OpenMP, whose team size is a property of the calling
	// thread (ORT calls from whichever thread runs the session). Set it
	// before a primitive is created as well as run: oneDNN splits the work
	// by the team size it sees at creation, and a primitive made for
	// another size than it runs with sums in another order.
	if (k->threads > 0) omp_set_num_threads((int)k->threads);
	const OrtValue *in0, *in1;
	ORT(api->KernelContext_GetInput(ctx, 0, &in0));
	ORT(api->KernelContext_GetInput(ctx, 1, &in1));
	int64_t key[9];
	OrtValue *outv;
	const void *src_in = NULL, *ddst_in, *w_in = NULL;
	void *out;
	if (k->data) {
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

	pthread_mutex_lock(&k->mu);
	struct plan *p = k->plans;
	while (p && memcmp(p->key, key, sizeof key) != 0) p = p->next;
	if (!p) {
		p = calloc(1, sizeof *p);
		OrtStatus *s = p ? build(k, key, p) : failf("%s: out of memory", OP_NAME);
		if (s) {
			if (p) plan_free(p);
			pthread_mutex_unlock(&k->mu);
			return s;
		}
		p->next = k->plans;
		k->plans = p;
	}
	dnnl_status_t st;
	if (k->data) {
		// W (plain) → the primitive's weights, then dX from dY and W
		st = dnnl_memory_set_data_handle(p->src, out);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)ddst_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->reorder ? p->dw_user : p->dw, (void *)w_in);
		if (st == dnnl_success && p->reorder) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->dw_user}, {DNNL_ARG_TO, p->dw}};
			st = dnnl_primitive_execute(p->reorder, k->st, 2, args);
		}
		if (st == dnnl_success) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->ddst}, {DNNL_ARG_WEIGHTS, p->dw}};
			st = dnnl_primitive_execute(p->prim, k->st, 3, args);
		}
	} else {
		st = dnnl_memory_set_data_handle(p->src, (void *)src_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)ddst_in);
		if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->reorder ? p->dw_user : p->dw, out);
		if (st == dnnl_success) {
			dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->ddst}, {DNNL_ARG_DIFF_WEIGHTS, p->dw}};
			st = dnnl_primitive_execute(p->prim, k->st, 3, args);
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

static OrtStatus *ORT_API_CALL create_kernel(const OrtCustomOp *op, const OrtApi *a, const OrtKernelInfo *info, void **out) {
	(void)a;
	struct kernel *k = calloc(1, sizeof *k);
	if (!k) return failf("bnaudit_dnnl: out of memory");
	k->data = op == &data_op;
	OrtStatus *s = attr(k, info, "kernel_shape", k->k, 2, -1);
	if (!s) s = attr(k, info, "strides", k->s, 2, 1);
	if (!s) s = attr(k, info, "pads", k->p, 4, 0);
	if (!s && k->data) s = attr(k, info, "input_hw", k->hw, 2, -1);
	if (!s) {
		OrtStatus *t = api->KernelInfoGetAttribute_int64(info, "threads", &k->threads);
		if (t != NULL) { // optional
			api->ReleaseStatus(t);
			k->threads = 0;
		}
	}
	if (!s && (dnnl_engine_create(&k->eng, dnnl_cpu, 0) != dnnl_success || dnnl_stream_create(&k->st, k->eng, dnnl_stream_default_flags) != dnnl_success))
		s = failf("%s: cannot create oneDNN CPU engine", OP_NAME);
	if (s) {
		if (k->st) dnnl_stream_destroy(k->st);
		if (k->eng) dnnl_engine_destroy(k->eng);
		free(k);
		return s;
	}
	pthread_mutex_init(&k->mu, NULL);
	*out = k;
	return NULL;
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

static const char *ORT_API_CALL op_name(const OrtCustomOp *op) { return op == &data_op ? DATA_GRAD : WEIGHT_GRAD; }
static const char *ORT_API_CALL op_ep(const OrtCustomOp *op) { (void)op; return "CPUExecutionProvider"; }
static ONNXTensorElementDataType ORT_API_CALL op_float(const OrtCustomOp *op, size_t i) { (void)op; (void)i; return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
static size_t ORT_API_CALL op_two(const OrtCustomOp *op) { (void)op; return 2; }
static size_t ORT_API_CALL op_one(const OrtCustomOp *op) { (void)op; return 1; }
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
	op->GetInputTypeCount = op_two;
	op->GetOutputType = op_float;
	op->GetOutputTypeCount = op_one;
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
		s = api->CreateCustomOpDomain(DOMAIN, &the_domain);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &weight_op);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &data_op);
		if (s != NULL && the_domain != NULL) {
			api->ReleaseCustomOpDomain(the_domain);
			the_domain = NULL;
		}
	}
	if (s == NULL) s = api->AddCustomOpDomain(options, the_domain);
	pthread_mutex_unlock(&reg_mu);
	return s;
}
