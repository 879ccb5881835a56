/*
 * cref: an rdeploy backend plugin written in C, against rdeploy_plugin.h only.
 *
 * A small reference interpreter for float32 ONNX models made of Gemm, MatMul (2-D), Add, Sub,
 * Mul, Div (numpy broadcasting), Relu, Sigmoid, Tanh, Softmax and Identity: enough for
 * multi-layer perceptrons and the classifier heads of larger models. It reads the ONNX protobuf
 * itself (wire format, no libraries), so to_backend can check every operator before anything is
 * run and name the one it lacks.
 *
 * Build: cc -std=c11 -O2 -shared -fPIC -I../../crates/plugin/include -o libcref.so cref_plugin.c -lm
 */
#include "rdeploy_plugin.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RANK 8

/* ---------------------------------------------------------------- errors */

struct rdeploy_error {
    char msg[1024];
};

static rdeploy_error *fail(const char *fmt, ...) {
    rdeploy_error *e = malloc(sizeof *e);
    if (!e) return NULL; /* out of memory: nothing better to report */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return e;
}

const char *rdeploy_plugin_error_message(const rdeploy_error *e) { return e ? e->msg : "(null)"; }
void rdeploy_plugin_error_free(rdeploy_error *e) { free(e); }

/* ---------------------------------------------------------------- model */

typedef struct {
    char *name;
    size_t rank;
    int64_t dims[MAX_RANK];
    float *data; /* owned */
    size_t n;
} tensor;

typedef struct {
    char *name;
    int dtype;
    size_t rank;
    int64_t dims[MAX_RANK]; /* -1 = dynamic */
} vinfo;

typedef struct {
    char *op;
    char *name;
    char **in;
    size_t n_in;
    char **out;
    size_t n_out;
    float alpha, beta;
    int64_t trans_a, trans_b, axis;
} node;

typedef struct {
    node *nodes;
    size_t n_nodes;
    tensor *inits;
    size_t n_inits;
    vinfo *inputs;
    size_t n_inputs;
    vinfo *outputs;
    size_t n_outputs;
} model;

static char *dupn(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void *grow(void *arr, size_t *n, size_t size) {
    void *p = realloc(arr, (*n + 1) * size);
    if (!p) return NULL;
    memset((char *)p + *n * size, 0, size);
    (*n)++;
    return p;
}

static void free_model(model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_nodes; i++) {
        node *nd = &m->nodes[i];
        for (size_t j = 0; j < nd->n_in; j++) free(nd->in[j]);
        for (size_t j = 0; j < nd->n_out; j++) free(nd->out[j]);
        free(nd->in);
        free(nd->out);
        free(nd->op);
        free(nd->name);
    }
    for (size_t i = 0; i < m->n_inits; i++) {
        free(m->inits[i].name);
        free(m->inits[i].data);
    }
    for (size_t i = 0; i < m->n_inputs; i++) free(m->inputs[i].name);
    for (size_t i = 0; i < m->n_outputs; i++) free(m->outputs[i].name);
    free(m->nodes);
    free(m->inits);
    free(m->inputs);
    free(m->outputs);
    free(m);
}

/* ---------------------------------------------------------------- protobuf wire format */

typedef struct {
    const uint8_t *p, *end;
    int bad;
} pb;

static uint64_t varint(pb *b) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) break;
        uint8_t c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    b->bad = 1;
    return 0;
}

/* Reads a field key; 0 at the end or on malformed input. */
static int key(pb *b, uint32_t *field, uint32_t *wire) {
    if (b->bad || b->p >= b->end) return 0;
    uint64_t k = varint(b);
    *field = (uint32_t)(k >> 3);
    *wire = (uint32_t)(k & 7);
    return !b->bad;
}

static pb sub(pb *b) {
    uint64_t n = varint(b);
    pb s = {b->p, b->p, 0};
    if (b->bad || n > (uint64_t)(b->end - b->p)) {
        b->bad = 1;
        return s;
    }
    s.end = b->p + n;
    b->p += n;
    return s;
}

static void skip(pb *b, uint32_t wire) {
    switch (wire) {
    case 0: varint(b); break;
    case 1: if (b->end - b->p < 8) b->bad = 1; else b->p += 8; break;
    case 2: sub(b); break;
    case 5: if (b->end - b->p < 4) b->bad = 1; else b->p += 4; break;
    default: b->bad = 1;
    }
}

static char *str(pb *b) {
    pb s = sub(b);
    return b->bad ? NULL : dupn(s.p, (size_t)(s.end - s.p));
}

static float f32le(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4); /* little-endian hosts only, as rdeploy's ABI */
    return f;
}

static rdeploy_error *parse_tensor(pb b, tensor *t) {
    uint32_t f, w;
    int dtype = 0;
    const uint8_t *raw = NULL;
    size_t raw_n = 0, floats = 0;
    float *fdata = NULL;
    while (key(&b, &f, &w)) {
        if (f == 1 && w == 0) {
            if (t->rank >= MAX_RANK) return fail("a weight has more than %d dims", MAX_RANK);
            t->dims[t->rank++] = (int64_t)varint(&b);
        } else if (f == 1 && w == 2) {
            pb s = sub(&b);
            while (s.p < s.end && !s.bad) {
                if (t->rank >= MAX_RANK) return fail("a weight has more than %d dims", MAX_RANK);
                t->dims[t->rank++] = (int64_t)varint(&s);
            }
        } else if (f == 2 && w == 0) {
            dtype = (int)varint(&b);
        } else if (f == 4 && w == 2) {
            pb s = sub(&b);
            size_t n = (size_t)(s.end - s.p) / 4;
            float *nd = realloc(fdata, (floats + n) * sizeof(float));
            if (!nd) { free(fdata); return fail("out of memory"); }
            fdata = nd;
            for (size_t i = 0; i < n; i++) fdata[floats++] = f32le(s.p + 4 * i);
        } else if (f == 4 && w == 5) {
            float *nd = realloc(fdata, (floats + 1) * sizeof(float));
            if (!nd || b.end - b.p < 4) { free(nd ? nd : fdata); return fail("bad float_data"); }
            fdata = nd;
            fdata[floats++] = f32le(b.p);
            b.p += 4;
        } else if (f == 8 && w == 2) {
            t->name = str(&b);
        } else if (f == 9 && w == 2) {
            pb s = sub(&b);
            raw = s.p;
            raw_n = (size_t)(s.end - s.p);
        } else if (f == 14 && w == 0) {
            if (varint(&b) == 1) { free(fdata); return fail("weight '%s' is stored outside the file (external data); cref reads single-file models", t->name ? t->name : "?"); }
        } else {
            skip(&b, w);
        }
    }
    if (b.bad) { free(fdata); return fail("a weight is malformed"); }
    if (dtype != RDEPLOY_F32) { free(fdata); return fail("weight '%s' has element type %d; cref runs float32 models only", t->name ? t->name : "?", dtype); }
    t->n = 1;
    for (size_t i = 0; i < t->rank; i++) t->n *= (size_t)t->dims[i];
    if (raw) {
        if (raw_n != t->n * 4) { free(fdata); return fail("weight '%s': %zu bytes for %zu floats", t->name, raw_n, t->n); }
        t->data = malloc(t->n * sizeof(float) + 1);
        if (!t->data) { free(fdata); return fail("out of memory"); }
        for (size_t i = 0; i < t->n; i++) t->data[i] = f32le(raw + 4 * i);
        free(fdata);
    } else {
        if (floats != t->n) { free(fdata); return fail("weight '%s': %zu floats for %zu elements", t->name, floats, t->n); }
        t->data = fdata ? fdata : malloc(1);
    }
    return NULL;
}

static rdeploy_error *parse_value_info(pb b, vinfo *v) {
    uint32_t f, w;
    v->dtype = 0;
    while (key(&b, &f, &w)) {
        if (f == 1 && w == 2) {
            v->name = str(&b);
        } else if (f == 2 && w == 2) { /* TypeProto */
            pb t = sub(&b);
            uint32_t f2, w2;
            while (key(&t, &f2, &w2)) {
                if (f2 != 1 || w2 != 2) { skip(&t, w2); continue; }
                pb tt = sub(&t); /* TypeProto.Tensor */
                uint32_t f3, w3;
                while (key(&tt, &f3, &w3)) {
                    if (f3 == 1 && w3 == 0) {
                        v->dtype = (int)varint(&tt);
                    } else if (f3 == 2 && w3 == 2) {
                        pb shape = sub(&tt);
                        uint32_t f4, w4;
                        while (key(&shape, &f4, &w4)) {
                            if (f4 != 1 || w4 != 2) { skip(&shape, w4); continue; }
                            pb dim = sub(&shape);
                            int64_t d = -1;
                            uint32_t f5, w5;
                            while (key(&dim, &f5, &w5)) {
                                if (f5 == 1 && w5 == 0) d = (int64_t)varint(&dim);
                                else skip(&dim, w5);
                            }
                            if (v->rank >= MAX_RANK) return fail("'%s' has more than %d dims", v->name, MAX_RANK);
                            v->dims[v->rank++] = d;
                        }
                    } else {
                        skip(&tt, w3);
                    }
                }
            }
        } else {
            skip(&b, w);
        }
    }
    return b.bad ? fail("a graph input or output is malformed") : NULL;
}

static const char *const SUPPORTED[] = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu",
                                        "Sigmoid", "Tanh", "Softmax", "Identity", NULL};

static int supported(const char *op) {
    for (int i = 0; SUPPORTED[i]; i++)
        if (strcmp(op, SUPPORTED[i]) == 0) return 1;
    return 0;
}

static rdeploy_error *parse_node(pb b, node *nd) {
    uint32_t f, w;
    char *domain = NULL;
    nd->alpha = 1.0f;
    nd->beta = 1.0f;
    nd->axis = -1;
    while (key(&b, &f, &w)) {
        if ((f == 1 || f == 2) && w == 2) {
            char ***list = f == 1 ? &nd->in : &nd->out;
            size_t *n = f == 1 ? &nd->n_in : &nd->n_out;
            char **l = realloc(*list, (*n + 1) * sizeof(char *));
            if (!l) return fail("out of memory");
            *list = l;
            l[(*n)++] = str(&b);
        } else if (f == 3 && w == 2) {
            nd->name = str(&b);
        } else if (f == 4 && w == 2) {
            nd->op = str(&b);
        } else if (f == 7 && w == 2) {
            free(domain);
            domain = str(&b);
        } else if (f == 5 && w == 2) { /* AttributeProto */
            pb a = sub(&b);
            char *name = NULL;
            float fv = 0;
            int64_t iv = 0;
            uint32_t fa, wa;
            while (key(&a, &fa, &wa)) {
                if (fa == 1 && wa == 2) { free(name); name = str(&a); }
                else if (fa == 2 && wa == 5 && a.end - a.p >= 4) { fv = f32le(a.p); a.p += 4; }
                else if (fa == 3 && wa == 0) iv = (int64_t)varint(&a);
                else skip(&a, wa);
            }
            if (name) {
                if (!strcmp(name, "alpha")) nd->alpha = fv;
                else if (!strcmp(name, "beta")) nd->beta = fv;
                else if (!strcmp(name, "transA")) nd->trans_a = iv;
                else if (!strcmp(name, "transB")) nd->trans_b = iv;
                else if (!strcmp(name, "axis")) nd->axis = iv;
            }
            free(name);
        } else {
            skip(&b, w);
        }
    }
    if (b.bad || !nd->op) { free(domain); return fail("a node is malformed"); }
    int foreign = domain && domain[0] && strcmp(domain, "ai.onnx") != 0;
    rdeploy_error *e = NULL;
    if (foreign || !supported(nd->op)) {
        char list[256] = "";
        for (int i = 0; SUPPORTED[i]; i++) {
            strncat(list, SUPPORTED[i], sizeof list - strlen(list) - 1);
            if (SUPPORTED[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
        }
        e = fail("node '%s': operator %s%s%s is not supported by cref (it runs %s); use another backend for this model",
                 nd->name ? nd->name : "", foreign ? domain : "", foreign ? "." : "", nd->op, list);
    }
    free(domain);
    return e;
}

static rdeploy_error *load_model(const char *path, model **out) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail("cannot open %s: %s", path, strerror(errno));
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        fclose(fp);
        free(buf);
        return fail("cannot read %s", path);
    }
    fclose(fp);
    model *m = calloc(1, sizeof *m);
    rdeploy_error *e = NULL;
    pb b = {buf, buf + size, 0};
    uint32_t f, w;
    int have_graph = 0;
    while (!e && key(&b, &f, &w)) {
        if (f != 7 || w != 2) { skip(&b, w); continue; }
        have_graph = 1;
        pb g = sub(&b);
        uint32_t fg, wg;
        while (!e && key(&g, &fg, &wg)) {
            if (fg == 1 && wg == 2) {
                node *n = grow(m->nodes, &m->n_nodes, sizeof(node));
                if (!n) { e = fail("out of memory"); break; }
                m->nodes = n;
                e = parse_node(sub(&g), &m->nodes[m->n_nodes - 1]);
            } else if (fg == 5 && wg == 2) {
                tensor *t = grow(m->inits, &m->n_inits, sizeof(tensor));
                if (!t) { e = fail("out of memory"); break; }
                m->inits = t;
                e = parse_tensor(sub(&g), &m->inits[m->n_inits - 1]);
            } else if ((fg == 11 || fg == 12) && wg == 2) {
                vinfo **list = fg == 11 ? &m->inputs : &m->outputs;
                size_t *n = fg == 11 ? &m->n_inputs : &m->n_outputs;
                vinfo *v = grow(*list, n, sizeof(vinfo));
                if (!v) { e = fail("out of memory"); break; }
                *list = v;
                e = parse_value_info(sub(&g), &v[*n - 1]);
            } else {
                skip(&g, wg);
            }
        }
        if (!e && g.bad) e = fail("the graph is malformed");
    }
    free(buf);
    if (!e && (b.bad || !have_graph)) e = fail("%s is not an ONNX model (no graph)", path);
    /* Older models list weights as inputs too: those are not inputs to feed. */
    for (size_t i = 0; !e && i < m->n_inputs;) {
        int is_init = 0;
        for (size_t j = 0; j < m->n_inits; j++)
            if (m->inputs[i].name && m->inits[j].name && !strcmp(m->inputs[i].name, m->inits[j].name)) is_init = 1;
        if (is_init) {
            free(m->inputs[i].name);
            memmove(&m->inputs[i], &m->inputs[i + 1], (m->n_inputs - i - 1) * sizeof(vinfo));
            m->n_inputs--;
        } else {
            if (m->inputs[i].dtype != RDEPLOY_F32)
                e = fail("input '%s' has element type %d; cref runs float32 models only", m->inputs[i].name, m->inputs[i].dtype);
            i++;
        }
    }
    if (e) {
        free_model(m);
        return e;
    }
    *out = m;
    return NULL;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct {
    tensor *v;
    size_t n;
} values;

static tensor *find(values *vs, const char *name) {
    for (size_t i = vs->n; i-- > 0;)
        if (vs->v[i].name && !strcmp(vs->v[i].name, name)) return &vs->v[i];
    return NULL;
}

static tensor *add_value(values *vs, const char *name, size_t rank, const int64_t *dims) {
    tensor *t = grow(vs->v, &vs->n, sizeof(tensor));
    if (!t) return NULL;
    vs->v = t;
    t = &vs->v[vs->n - 1];
    t->name = dupn((const uint8_t *)name, strlen(name));
    t->rank = rank;
    t->n = 1;
    for (size_t i = 0; i < rank; i++) {
        t->dims[i] = dims[i];
        t->n *= (size_t)dims[i];
    }
    t->data = calloc(t->n ? t->n : 1, sizeof(float));
    return t->data && t->name ? t : NULL;
}

static rdeploy_error *gemm(const node *nd, tensor *a, tensor *b, tensor *c, values *vs, int matmul) {
    if (a->rank != 2 || b->rank != 2)
        return fail("node '%s' (%s): cref multiplies 2-D matrices only, got ranks %zu and %zu", nd->name ? nd->name : "", nd->op, a->rank, b->rank);
    int64_t ta = matmul ? 0 : nd->trans_a, tb = matmul ? 0 : nd->trans_b;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb) return fail("node '%s' (%s): inner dims %lld and %lld differ", nd->name ? nd->name : "", nd->op, (long long)K, (long long)Kb);
    int64_t dims[2] = {M, N};
    tensor *y = add_value(vs, nd->out[0], 2, dims);
    if (!y) return fail("out of memory");
    float alpha = matmul ? 1.0f : nd->alpha, beta = matmul ? 0.0f : nd->beta;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                float av = ta ? a->data[k * M + i] : a->data[i * K + k];
                float bv = tb ? b->data[j * K + k] : b->data[k * N + j];
                s += (double)av * bv;
            }
            float cv = 0;
            if (c && beta != 0.0f) {
                /* C broadcasts to [M, N]: scalar, [N], [1, N], [M, 1] or [M, N]. */
                int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
                if ((cm != 1 && cm != M) || (cn != 1 && cn != N))
                    return fail("node '%s' (Gemm): C of shape [%lld, %lld] does not broadcast to [%lld, %lld]", nd->name ? nd->name : "", (long long)cm, (long long)cn, (long long)M, (long long)N);
                cv = c->data[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
            }
            y->data[i * N + j] = alpha * (float)s + beta * cv;
        }
    return NULL;
}

static rdeploy_error *binary(const node *nd, tensor *a, tensor *b, values *vs) {
    size_t rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[MAX_RANK], sa[MAX_RANK], sb[MAX_RANK];
    int64_t stride_a = 1, stride_b = 1;
    for (size_t i = rank; i-- > 0;) {
        size_t ia = i + a->rank - rank, ib = i + b->rank - rank; /* wrap below 0 = missing */
        int64_t da = i + a->rank >= rank ? a->dims[ia] : 1, db = i + b->rank >= rank ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return fail("node '%s' (%s): shapes do not broadcast (dim %zu: %lld vs %lld)", nd->name ? nd->name : "", nd->op, i, (long long)da, (long long)db);
        dims[i] = da > db ? da : db;
        sa[i] = da == 1 ? 0 : stride_a;
        sb[i] = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
    }
    tensor *y = add_value(vs, nd->out[0], rank, dims);
    if (!y) return fail("out of memory");
    char op = nd->op[0];
    for (size_t k = 0; k < y->n; k++) {
        size_t rem = k, oa = 0, ob = 0;
        for (size_t i = rank; i-- > 0;) {
            size_t idx = rem % (size_t)dims[i];
            rem /= (size_t)dims[i];
            oa += idx * (size_t)sa[i];
            ob += idx * (size_t)sb[i];
        }
        float x = a->data[oa], z = b->data[ob];
        y->data[k] = op == 'A' ? x + z : op == 'S' ? x - z : op == 'M' ? x * z : x / z;
    }
    return NULL;
}

static rdeploy_error *unary(const node *nd, tensor *x, values *vs) {
    tensor *y = add_value(vs, nd->out[0], x->rank, x->dims);
    if (!y) return fail("out of memory");
    const char *op = nd->op;
    if (!strcmp(op, "Softmax")) {
        int64_t axis = nd->axis < 0 ? nd->axis + (int64_t)x->rank : nd->axis;
        if (axis < 0 || axis >= (int64_t)x->rank) return fail("node '%s' (Softmax): axis %lld out of range", nd->name ? nd->name : "", (long long)nd->axis);
        size_t len = (size_t)x->dims[axis], inner = 1, outer = 1;
        for (size_t i = (size_t)axis + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
        for (size_t i = 0; i < (size_t)axis; i++) outer *= (size_t)x->dims[i];
        for (size_t o = 0; o < outer; o++)
            for (size_t in = 0; in < inner; in++) {
                const float *src = x->data + o * len * inner + in;
                float *dst = y->data + o * len * inner + in;
                float mx = -INFINITY;
                for (size_t k = 0; k < len; k++) mx = src[k * inner] > mx ? src[k * inner] : mx;
                double sum = 0;
                for (size_t k = 0; k < len; k++) sum += (dst[k * inner] = expf(src[k * inner] - mx));
                for (size_t k = 0; k < len; k++) dst[k * inner] = (float)(dst[k * inner] / sum);
            }
        return NULL;
    }
    for (size_t k = 0; k < x->n; k++) {
        float v = x->data[k];
        y->data[k] = !strcmp(op, "Relu") ? (v > 0 ? v : 0)
                   : !strcmp(op, "Sigmoid") ? 1.0f / (1.0f + expf(-v))
                   : !strcmp(op, "Tanh") ? tanhf(v)
                   : v;
    }
    return NULL;
}

static rdeploy_error *run_node(const node *nd, values *vs) {
    tensor *in[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < nd->n_in && i < 3; i++) {
        if (!nd->in[i] || !nd->in[i][0]) continue; /* optional input left out */
        in[i] = find(vs, nd->in[i]);
        if (!in[i]) return fail("node '%s' (%s): input '%s' is not computed before it (is the graph sorted?)", nd->name ? nd->name : "", nd->op, nd->in[i]);
    }
    if (nd->n_out < 1 || !in[0]) return fail("node '%s' (%s) has no input or output", nd->name ? nd->name : "", nd->op);
    const char *op = nd->op;
    if (!strcmp(op, "Gemm") || !strcmp(op, "MatMul")) {
        if (!in[1]) return fail("node '%s' (%s) needs two inputs", nd->name ? nd->name : "", op);
        return gemm(nd, in[0], in[1], in[2], vs, !strcmp(op, "MatMul"));
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (!in[1]) return fail("node '%s' (%s) needs two inputs", nd->name ? nd->name : "", op);
        return binary(nd, in[0], in[1], vs);
    }
    return unary(nd, in[0], vs);
}

/* ---------------------------------------------------------------- the ABI */

uint32_t rdeploy_plugin_abi_version(void) { return RDEPLOY_PLUGIN_ABI_VERSION; }
const char *rdeploy_plugin_name(void) { return "cref"; }
const char *rdeploy_plugin_version(void) { return "0.1.0"; }
const char *rdeploy_plugin_device_kinds(void) { return "cpu"; }
rdeploy_error *rdeploy_plugin_is_available(void) { return NULL; /* plain C: always here */ }

static rdeploy_error *check_device(const char *device) {
    if (strcmp(device, "cpu") != 0) return fail("cref runs on the CPU only, not '%s'; pass --device cpu", device);
    return NULL;
}

/* Checks the model loads and every operator is supported, then copies it into the work dir as
 * <work_dir>/end2end.cref.onnx (written to a temporary name, then renamed: never half-written). */
rdeploy_error *rdeploy_plugin_to_backend(const char *ir_file, const char *config_json,
                                         const char *work_dir, const char *device,
                                         rdeploy_file_fn add_file, void *ctx) {
    (void)config_json;
    rdeploy_error *e = check_device(device);
    if (e) return e;
    model *m = NULL;
    e = load_model(ir_file, &m);
    if (e) return e;
    free_model(m);
    char dst[4096], tmp[4200];
    snprintf(dst, sizeof dst, "%s/end2end.cref.onnx", work_dir);
    snprintf(tmp, sizeof tmp, "%s.partial", dst);
    FILE *in = fopen(ir_file, "rb");
    if (!in) return fail("cannot open %s: %s", ir_file, strerror(errno));
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        fclose(in);
        return fail("cannot write %s: %s", tmp, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int ok = 1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) ok = 0;
    if (ferror(in)) ok = 0;
    fclose(in);
    if (fclose(out) != 0) ok = 0;
    if (!ok || rename(tmp, dst) != 0) {
        remove(tmp);
        return fail("cannot write %s: %s", dst, strerror(errno));
    }
    add_file(ctx, dst);
    return NULL;
}

struct rdeploy_session {
    model *m;
};

rdeploy_error *rdeploy_plugin_session_create(const char *const *files, size_t n_files,
                                             const char *device, const char *config_json,
                                             rdeploy_session **out) {
    (void)config_json;
    rdeploy_error *e = check_device(device);
    if (e) return e;
    if (n_files != 1) return fail("cref loads one .onnx file, got %zu files", n_files);
    model *m = NULL;
    e = load_model(files[0], &m);
    if (e) return e;
    rdeploy_session *s = malloc(sizeof *s);
    if (!s) {
        free_model(m);
        return fail("out of memory");
    }
    s->m = m;
    *out = s;
    return NULL;
}

void rdeploy_plugin_session_destroy(rdeploy_session *s) {
    if (!s) return;
    free_model(s->m);
    free(s);
}

rdeploy_error *rdeploy_plugin_session_signature(const rdeploy_session *s, rdeploy_signature_fn input,
                                                rdeploy_signature_fn output, void *ctx) {
    for (int pass = 0; pass < 2; pass++) {
        vinfo *list = pass ? s->m->outputs : s->m->inputs;
        size_t n = pass ? s->m->n_outputs : s->m->n_inputs;
        for (size_t i = 0; i < n; i++) {
            rdeploy_tensor_info info = {list[i].name, RDEPLOY_F32, list[i].rank, list[i].dims};
            (pass ? output : input)(ctx, &info);
        }
    }
    return NULL;
}

rdeploy_error *rdeploy_plugin_session_run(rdeploy_session *s, const rdeploy_tensor *inputs,
                                          size_t n_inputs, rdeploy_tensor_fn emit, void *ctx) {
    model *m = s->m;
    if (n_inputs != m->n_inputs) return fail("expected %zu inputs, got %zu", m->n_inputs, n_inputs);
    values vs = {NULL, 0};
    rdeploy_error *e = NULL;
    /* Weights are borrowed, not copied: their slots are released without freeing the data. */
    for (size_t i = 0; !e && i < m->n_inits; i++) {
        tensor *t = grow(vs.v, &vs.n, sizeof(tensor));
        if (!t) { e = fail("out of memory"); break; }
        vs.v = t;
        vs.v[vs.n - 1] = m->inits[i];
    }
    size_t borrowed = vs.n;
    for (size_t i = 0; !e && i < n_inputs; i++) {
        const rdeploy_tensor *in = &inputs[i];
        if (in->dtype != RDEPLOY_F32) { e = fail("input '%s' must be float32", in->name); break; }
        if (in->rank > MAX_RANK) { e = fail("input '%s' has more than %d dims", in->name, MAX_RANK); break; }
        tensor *t = add_value(&vs, m->inputs[i].name, in->rank, in->shape);
        if (!t) { e = fail("out of memory"); break; }
        if (in->byte_size != t->n * sizeof(float)) { e = fail("input '%s': %zu bytes for %zu floats", in->name, in->byte_size, t->n); break; }
        memcpy(t->data, in->data, in->byte_size);
    }
    for (size_t i = 0; !e && i < m->n_nodes; i++) e = run_node(&m->nodes[i], &vs);
    for (size_t i = 0; !e && i < m->n_outputs; i++) {
        tensor *t = find(&vs, m->outputs[i].name);
        if (!t) { e = fail("output '%s' is not computed by any node", m->outputs[i].name); break; }
        rdeploy_tensor out = {m->outputs[i].name, RDEPLOY_F32, t->rank, t->dims, t->data, t->n * sizeof(float)};
        emit(ctx, &out);
    }
    for (size_t i = borrowed; i < vs.n; i++) {
        free(vs.v[i].name);
        free(vs.v[i].data);
    }
    free(vs.v);
    return e;
}
