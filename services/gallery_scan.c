/* The gallery's first pass: which rows may lie within a radius of a query, from 8-bit codes.
 *
 * Why C: the pass reads one byte per coded coordinate of every row (48 MB at 1,000,000 faces)
 * and must keep up with memory. NumPy has no fast 8-bit dot product and Numba did not vectorise
 * it; AVX-512 VNNI multiplies and adds 64 byte pairs in one instruction, so the pass runs at
 * memory speed. A portable loop gives the same answer on CPUs without VNNI, only slower.
 *
 * Layout (services/gallery_codes.py writes it): rows in blocks of 16; a block holds, for each
 * group of 4 coded coordinates, 16 rows x 4 bytes, each byte a code plus 128 (unsigned, as
 * VNNI wants one operand). A row's squared code distance to the query is
 *   sq_norms[row] + query_sq_norm - 2 * (sum((code + 128) * query) - bias),  bias = 128 * sum(query)
 * and the row is a candidate when that is at most (radius + errors[row])^2.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { LANES = 16, GROUP = 4, BLOCK_GROUP_BYTES = LANES * GROUP };

typedef struct {
    const uint8_t *codes;     /* blocks x groups x 16 x 4 */
    const int32_t *sq_norms;  /* per row: sum of code^2 */
    const float *errors;      /* per row: distance from the row to its codes, in code units */
    const int32_t *query;     /* per group: 4 signed query codes */
    Py_ssize_t groups;
    Py_ssize_t rows;          /* rows past this in the last block are not answered */
    int32_t bias;
    int32_t query_sq_norm;
    float radius;
    int64_t *out;
} Scan;

static inline Py_ssize_t keep(const Scan *s, Py_ssize_t row, int32_t biased_dot, Py_ssize_t found) {
    if (row >= s->rows)
        return found;
    float limit = s->radius + s->errors[row];
    int32_t sq_distance = s->sq_norms[row] + s->query_sq_norm - 2 * (biased_dot - s->bias);
    if ((float)sq_distance <= limit * limit)
        s->out[found++] = row;
    return found;
}

static Py_ssize_t scan_portable(const Scan *s) {
    Py_ssize_t found = 0, blocks = (s->rows + LANES - 1) / LANES;
    for (Py_ssize_t b = 0; b < blocks; b++) {
        const uint8_t *block = s->codes + b * s->groups * BLOCK_GROUP_BYTES;
        int32_t dot[LANES] = {0};
        for (Py_ssize_t g = 0; g < s->groups; g++) {
            const int8_t *q = (const int8_t *)&s->query[g];
            const uint8_t *group = block + g * BLOCK_GROUP_BYTES;
            for (int lane = 0; lane < LANES; lane++)
                for (int t = 0; t < GROUP; t++)
                    dot[lane] += (int32_t)group[lane * GROUP + t] * (int32_t)q[t];
        }
        for (int lane = 0; lane < LANES; lane++)
            found = keep(s, b * LANES + lane, dot[lane], found);
    }
    return found;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_VNNI_PATH 1

__attribute__((target("avx512f,avx512vnni")))
static Py_ssize_t scan_vnni(const Scan *s) {
    Py_ssize_t found = 0, blocks = (s->rows + LANES - 1) / LANES;
    const __m512i offset = _mm512_set1_epi32(s->query_sq_norm + 2 * s->bias);
    const __m512 radius = _mm512_set1_ps(s->radius);
    for (Py_ssize_t b = 0; b < blocks; b++) {
        const uint8_t *block = s->codes + b * s->groups * BLOCK_GROUP_BYTES;
        __m512i dot = _mm512_setzero_si512();
        for (Py_ssize_t g = 0; g < s->groups; g++)
            dot = _mm512_dpbusd_epi32(dot, _mm512_loadu_si512((const void *)(block + g * BLOCK_GROUP_BYTES)),
                                      _mm512_set1_epi32(s->query[g]));
        /* sq_norms + query_sq_norm - 2 * (dot - bias), all 16 rows at once */
        __m512i sq_distance = _mm512_sub_epi32(_mm512_add_epi32(_mm512_loadu_si512((const void *)(s->sq_norms + b * LANES)), offset),
                                               _mm512_add_epi32(dot, dot));
        __m512 limit = _mm512_add_ps(radius, _mm512_loadu_ps(s->errors + b * LANES));
        __mmask16 hits = _mm512_cmp_ps_mask(_mm512_cvtepi32_ps(sq_distance), _mm512_mul_ps(limit, limit), _CMP_LE_OQ);
        Py_ssize_t past = s->rows - b * LANES;  /* the last block may be part full */
        if (past < LANES)
            hits &= (__mmask16)((1u << past) - 1);
        while (hits) {
            s->out[found++] = b * LANES + __builtin_ctz(hits);
            hits &= hits - 1;
        }
    }
    return found;
}

static int has_vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}
#endif

static int need(Py_buffer *buffer, Py_ssize_t bytes, const char *name) {
    if (buffer->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, the scan needs %zd", name, buffer->len, bytes);
        return 0;
    }
    return 1;
}

static PyObject *candidates(PyObject *module, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"codes", "sq_norms", "errors", "query", "bias", "query_sq_norm",
                               "radius", "rows", "out", "portable", NULL};
    Py_buffer codes, sq_norms, errors, query, out;
    Scan s;
    double radius;
    int portable = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*y*y*iidnw*|p", keywords, &codes, &sq_norms, &errors,
                                     &query, &s.bias, &s.query_sq_norm, &radius, &s.rows, &out, &portable))
        return NULL;
    s.groups = query.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t padded = (s.rows + LANES - 1) / LANES * LANES;
    PyObject *result = NULL;
    if (s.rows >= 0 && query.len % sizeof(int32_t) == 0
        && need(&codes, padded * s.groups * GROUP, "codes") && need(&sq_norms, padded * 4, "sq_norms")
        && need(&errors, padded * 4, "errors") && need(&out, s.rows * 8, "out")) {
        s.codes = codes.buf;
        s.sq_norms = sq_norms.buf;
        s.errors = errors.buf;
        s.query = query.buf;
        s.out = out.buf;
        s.radius = (float)radius;
        Py_ssize_t found;
        Py_BEGIN_ALLOW_THREADS
#ifdef HAVE_VNNI_PATH
        found = (!portable && has_vnni()) ? scan_vnni(&s) : scan_portable(&s);
#else
        found = scan_portable(&s);
#endif
        Py_END_ALLOW_THREADS
        result = PyLong_FromSsize_t(found);
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "rows must be >= 0 and the query whole groups of 4 bytes");
    }
    PyBuffer_Release(&codes);
    PyBuffer_Release(&sq_norms);
    PyBuffer_Release(&errors);
    PyBuffer_Release(&query);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *vectorised(PyObject *module, PyObject *unused) {
#ifdef HAVE_VNNI_PATH
    return PyBool_FromLong(has_vnni());
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"candidates", (PyCFunction)(void (*)(void))candidates, METH_VARARGS | METH_KEYWORDS,
     "Write the rows that may lie within `radius` of the query into `out`; return how many."},
    {"vectorised", vectorised, METH_NOARGS, "Whether this CPU takes the AVX-512 VNNI path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_gallery_scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__gallery_scan(void) { return PyModule_Create(&module); }
