// bnaudit_dnnl: an ONNX Runtime custom-op library with one operator,
// bnaudit.dnnl::ConvWeightGradBlocked, the weight gradient of a 2-D
// convolution computed by oneDNN from tensors in ORT's NCHWc layout.
//
//   inputs:  X  float [N, C/B, H, W, B]    (oneDNN's nChw{B}c)
//            dY float [N, O/B, Ho, Wo, B]
//   attrs:   kernel_shape [kh, kw], strides [sh, sw], pads [pt, pl, pb, pr]
//   output:  dW float [O, C, kh, kw]
//
// dW[o, c, i, j] = Σ_{n,h,w} dY[n, o, h, w]·X[n, c, h·sh+i−pt, w·sw+j−pl].
// The block B is read from the last dimension of X (8 or 16). One oneDNN
// backward-weights primitive is built per input shape and kept in the
// kernel. See README.md for how to build it.

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include "onnxruntime_c_api.h"

static const OrtApi *api;

#define DOMAIN "bnaudit.dnnl"
#define OP_NAME "ConvWeightGradBlocked"

// plan is a primitive for one shape.
struct plan {
	int64_t key[9];            // N, C, H, W, O, Ho, Wo, B, 0
	dnnl_primitive_t prim;     // backward weights
	dnnl_memory_t src, ddst;   // user memories (handles set per run)
	dnnl_memory_t dw;          // primitive's diff weights (own buffer if reordered)
	dnnl_primitive_t reorder;  // dw → user oihw, or NULL when dw is oihw
	dnnl_memory_t dw_user;     // oihw memory on ORT's output (when reordered)
	struct plan *next;
};

struct kernel {
	int64_t k[2], s[2], p[4];
	int64_t threads; // OpenMP threads of oneDNN's primitives (0: OpenMP's default)
	dnnl_engine_t eng;
	dnnl_stream_t st;
	pthread_mutex_t mu;
	struct plan *plans;
};

__attribute__((format(printf, 1, 2)))
static OrtStatus *fail(const char *fmt, ...) {
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
		if (s_ != dnnl_success) return fail(OP_NAME ": oneDNN %s failed (status %d)", #x, (int)s_); \
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
	if (tag == dnnl_format_tag_undef) return fail(OP_NAME ": block %lld is neither 8 nor 16", (long long)b);
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
	DNNL(dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &s_md, &w_any, NULL, &d_md, strides, pl, pr));
	dnnl_status_t st = dnnl_primitive_desc_create(&bpd, &bd, NULL, k->eng, fpd);
	dnnl_primitive_desc_destroy(fpd);
	if (st != dnnl_success) return fail(OP_NAME ": oneDNN has no backward-weights convolution for this shape (status %d)", (int)st);
	const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(bpd, dnnl_query_diff_weights_md, 0);
	st = dnnl_primitive_create(&p->prim, bpd);
	if (st == dnnl_success) st = dnnl_memory_create(&p->src, &s_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success) st = dnnl_memory_create(&p->ddst, &d_md, k->eng, DNNL_MEMORY_NONE);
	if (st == dnnl_success && dnnl_memory_desc_equal(dw_md, &w_plain)) {
		st = dnnl_memory_create(&p->dw, &w_plain, k->eng, DNNL_MEMORY_NONE);
	} else if (st == dnnl_success) {
		dnnl_primitive_desc_t rpd = NULL;
		st = dnnl_memory_create(&p->dw, dw_md, k->eng, DNNL_MEMORY_ALLOCATE);
		if (st == dnnl_success) st = dnnl_memory_create(&p->dw_user, &w_plain, k->eng, DNNL_MEMORY_NONE);
		if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&rpd, dw_md, k->eng, &w_plain, k->eng, NULL);
		if (st == dnnl_success) st = dnnl_primitive_create(&p->reorder, rpd);
		if (rpd) dnnl_primitive_desc_destroy(rpd);
	}
	dnnl_primitive_desc_destroy(bpd);
	if (st != dnnl_success) return fail(OP_NAME ": oneDNN setup failed (status %d)", (int)st);
	memcpy(p->key, key, sizeof p->key);
	return NULL;
}

static OrtStatus *shape_of(const OrtValue *v, int64_t dims[5], const char *what) {
	OrtTensorTypeAndShapeInfo *info;
	ORT(api->GetTensorTypeAndShape(v, &info));
	size_t rank = 0;
	OrtStatus *s = api->GetDimensionsCount(info, &rank);
	if (s == NULL && rank != 5) s = fail(OP_NAME ": %s has rank %zu, want 5 ([N, C/B, H, W, B])", what, rank);
	if (s == NULL) s = api->GetDimensions(info, dims, 5);
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
	const OrtValue *xv, *dyv;
	ORT(api->KernelContext_GetInput(ctx, 0, &xv));
	ORT(api->KernelContext_GetInput(ctx, 1, &dyv));
	int64_t xs[5], ys[5];
	ORT(shape_of(xv, xs, "X"));
	ORT(shape_of(dyv, ys, "dY"));
	int64_t b = xs[4];
	if (ys[4] != b || xs[0] != ys[0]) return fail(OP_NAME ": X %lldx..x%lld and dY %lldx..x%lld disagree on batch or block", (long long)xs[0], (long long)b, (long long)ys[0], (long long)ys[4]);
	int64_t key[9] = {xs[0], xs[1] * b, xs[2], xs[3], ys[1] * b, ys[2], ys[3], b, 0};
	int64_t wdims[4] = {key[4], key[1], k->k[0], k->k[1]};
	OrtValue *dwv;
	ORT(api->KernelContext_GetOutput(ctx, 0, wdims, 4, &dwv));
	const void *x, *dy;
	void *dw;
	ORT(api->GetTensorData(xv, &x));
	ORT(api->GetTensorData(dyv, &dy));
	ORT(api->GetTensorMutableData(dwv, &dw));

	pthread_mutex_lock(&k->mu);
	struct plan *p = k->plans;
	while (p && memcmp(p->key, key, sizeof key) != 0) p = p->next;
	if (!p) {
		p = calloc(1, sizeof *p);
		OrtStatus *s = p ? build(k, key, p) : fail(OP_NAME ": out of memory");
		if (s) {
			if (p) plan_free(p);
			pthread_mutex_unlock(&k->mu);
			return s;
		}
		p->next = k->plans;
		k->plans = p;
	}
	dnnl_status_t st = dnnl_memory_set_data_handle(p->src, (void *)x);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->ddst, (void *)dy);
	if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->reorder ? p->dw_user : p->dw, dw);
	if (st == dnnl_success) {
		dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_DIFF_DST, p->ddst}, {DNNL_ARG_DIFF_WEIGHTS, p->dw}};
		st = dnnl_primitive_execute(p->prim, k->st, 3, args);
	}
	if (st == dnnl_success && p->reorder) {
		dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, p->dw}, {DNNL_ARG_TO, p->dw_user}};
		st = dnnl_primitive_execute(p->reorder, k->st, 2, args);
	}
	if (st == dnnl_success) st = dnnl_stream_wait(k->st);
	pthread_mutex_unlock(&k->mu);
	if (st != dnnl_success) return fail(OP_NAME ": oneDNN execution failed (status %d)", (int)st);
	return NULL;
}

static OrtStatus *attr(const OrtKernelInfo *info, const char *name, int64_t *out, size_t want, int64_t dflt) {
	size_t n = want;
	OrtStatus *s = api->KernelInfoGetAttributeArray_int64(info, name, out, &n);
	if (s != NULL) {
		api->ReleaseStatus(s);
		if (dflt < 0) return fail(OP_NAME ": attribute %s is required", name);
		for (size_t i = 0; i < want; i++) out[i] = dflt;
		return NULL;
	}
	if (n != want) return fail(OP_NAME ": attribute %s has %zu values, want %zu", name, n, want);
	return NULL;
}

static OrtStatus *ORT_API_CALL create_kernel(const OrtCustomOp *op, const OrtApi *a, const OrtKernelInfo *info, void **out) {
	(void)op;
	(void)a;
	struct kernel *k = calloc(1, sizeof *k);
	if (!k) return fail(OP_NAME ": out of memory");
	OrtStatus *s = attr(info, "kernel_shape", k->k, 2, -1);
	if (!s) s = attr(info, "strides", k->s, 2, 1);
	if (!s) s = attr(info, "pads", k->p, 4, 0);
	if (!s) {
		OrtStatus *t = api->KernelInfoGetAttribute_int64(info, "threads", &k->threads);
		if (t != NULL) { // optional
			api->ReleaseStatus(t);
			k->threads = 0;
		}
	}
	if (!s && (dnnl_engine_create(&k->eng, dnnl_cpu, 0) != dnnl_success || dnnl_stream_create(&k->st, k->eng, dnnl_stream_default_flags) != dnnl_success))
		s = fail(OP_NAME ": cannot create oneDNN CPU engine");
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

static const char *ORT_API_CALL op_name(const OrtCustomOp *op) { (void)op; return OP_NAME; }
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

static OrtCustomOp the_op;
static OrtCustomOpDomain *the_domain;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;

// RegisterCustomOps is what ORT's RegisterCustomOpsLibrary(_V2) calls. The
// domain is made once and shared by every session that registers it.
OrtStatus *ORT_API_CALL RegisterCustomOps(OrtSessionOptions *options, const OrtApiBase *base) {
	const OrtApi *a = base->GetApi(ORT_API_VERSION);
	if (a == NULL) return NULL;  // an older ORT: nothing to make a status with; the op stays unknown
	pthread_mutex_lock(&reg_mu);
	OrtStatus *s = NULL;
	if (the_domain == NULL) {
		api = a;
		the_op.version = ORT_API_VERSION;
		the_op.GetName = op_name;
		the_op.GetExecutionProviderType = op_ep;
		the_op.GetInputType = op_float;
		the_op.GetInputTypeCount = op_two;
		the_op.GetOutputType = op_float;
		the_op.GetOutputTypeCount = op_one;
		the_op.KernelDestroy = kernel_destroy;
		the_op.GetInputCharacteristic = op_required;
		the_op.GetOutputCharacteristic = op_required;
		the_op.GetInputMemoryType = op_mem;
		the_op.GetVariadicInputMinArity = op_arity;
		the_op.GetVariadicInputHomogeneity = op_homogeneous;
		the_op.GetVariadicOutputMinArity = op_arity;
		the_op.GetVariadicOutputHomogeneity = op_homogeneous;
		the_op.CreateKernelV2 = create_kernel;
		the_op.KernelComputeV2 = kernel_compute;
		the_op.GetStartVersion = op_start;
		the_op.GetEndVersion = op_end;
		s = api->CreateCustomOpDomain(DOMAIN, &the_domain);
		if (s == NULL) s = api->CustomOpDomain_Add(the_domain, &the_op);
		if (s != NULL && the_domain != NULL) {
			api->ReleaseCustomOpDomain(the_domain);
			the_domain = NULL;
		}
	}
	if (s == NULL) s = api->AddCustomOpDomain(options, the_domain);
	pthread_mutex_unlock(&reg_mu);
	return s;
}
