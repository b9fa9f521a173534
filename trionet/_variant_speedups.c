/* The optional compiled decoding loop of trionet's Godot variant codec.
 *
 * This is trionet/_variant_decode.py's loop (_decode) in C, for the same input and with
 * the same outcome: the same value, or DecodeError where the Python loop fails.  The
 * common types (nil, bool, int, float, String, StringName, 32-bit Vector2/Vector3,
 * Vector2i, Color, 32-bit PackedVector2Array, Array, Dictionary) are read here; every
 * other type, and every String that is not plain UTF-8 (a NUL, a BOM, invalid bytes),
 * goes to the Python reader of its type (trionet._variant_readers.READERS), so the rules
 * of the rarer types live in one place only.
 *
 * Safety on hostile input: every read is checked against the input's length before it
 * happens, every count is checked against the bytes left before anything is allocated
 * (an element takes at least 4 bytes), and nesting is bounded by MAX_DEPTH (Godot's
 * limit), which also bounds this file's recursion.
 *
 * configure() hands the module the Python objects it needs (DecodeError, the readers,
 * the value classes and the slot descriptors of their fields); decode(data, pos) is the
 * loop.  trionet/_variant_decode.py uses it when the module was built and configured.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 1024
#define FLAG_64 0x10000u
#define TYPED_MASK 0xF0000u
#define MAX_FIELDS 4

/* A value class and the slot descriptors of its fields, in order. */
typedef struct {
    PyTypeObject *type;
    PyObject *fields[MAX_FIELDS];
    int n;
} Maker;

enum { VECTOR2, VECTOR3, VECTOR2I, COLOR, STRING_NAME, PACKED_VECTOR2, N_MAKERS };

static PyObject *decode_error; /* trionet._variant_format.DecodeError */
static PyObject *readers;      /* list of 256 readers or None */
static PyObject *typed_container;
static Maker makers[N_MAKERS];
static int configured;

typedef struct {
    PyObject *data; /* the bytes object, for the Python readers */
    const unsigned char *buf;
    Py_ssize_t len;  /* bytes */
    Py_ssize_t end4; /* bytes in whole 32-bit words */
} Input;

static uint32_t
u32_at(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float
f32_at(const unsigned char *p)
{
    uint32_t bits = u32_at(p);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint64_t
u64_at(const unsigned char *p)
{
    return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32;
}

static PyObject *
truncated(void)
{
    PyErr_SetString(decode_error, "truncated data");
    return NULL;
}

/* Are the words w .. w + n - 1 inside the input? */
static int
has_words(const Input *in, Py_ssize_t w, Py_ssize_t n)
{
    return w >= 0 && n <= (in->end4 >> 2) - w;
}

/* A value object from n new references (consumed, also on failure). */
static PyObject *
make(const Maker *m, PyObject **values)
{
    PyObject *obj = NULL;
    int i;
    for (i = 0; i < m->n; i++) {
        if (values[i] == NULL) {
            goto done;
        }
    }
    obj = m->type->tp_alloc(m->type, 0);
    if (obj == NULL) {
        goto done;
    }
    for (i = 0; i < m->n; i++) {
        PyObject *field = m->fields[i];
        if (Py_TYPE(field)->tp_descr_set(field, obj, values[i]) < 0) {
            Py_CLEAR(obj);
            goto done;
        }
    }
done:
    for (i = 0; i < m->n; i++) {
        Py_XDECREF(values[i]);
    }
    return obj;
}

/* A value of n float32 components at word w. */
static PyObject *
make_floats(const Input *in, Py_ssize_t w, const Maker *m)
{
    PyObject *values[MAX_FIELDS];
    int i;
    if (!has_words(in, w, m->n)) {
        return truncated();
    }
    for (i = 0; i < m->n; i++) {
        values[i] = PyFloat_FromDouble((double)f32_at(in->buf + 4 * (w + i)));
    }
    return make(m, values);
}

/* The value of the type's Python reader; *w becomes the word after it. */
static PyObject *
delegate(const Input *in, Py_ssize_t *w, uint32_t header)
{
    unsigned type_number = header & 0xFF;
    PyObject *reader, *result, *value;
    Py_ssize_t offset;
    reader = (Py_ssize_t)type_number < PyList_GET_SIZE(readers)
                 ? PyList_GET_ITEM(readers, type_number)
                 : Py_None;
    if (reader == Py_None) {
        PyErr_Format(decode_error, "unknown type number %u at offset %zd", type_number, *w * 4);
        return NULL;
    }
    result = PyObject_CallFunction(reader, "Onnk", in->data, (*w + 1) * 4, in->len,
                                   (unsigned long)header);
    if (result == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) != 2) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_TypeError, "a reader must return (value, offset)");
        return NULL;
    }
    offset = PyLong_AsSsize_t(PyTuple_GET_ITEM(result, 1));
    if (offset < 0) {
        Py_DECREF(result);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "a reader returned a negative offset");
        }
        return NULL;
    }
    value = PyTuple_GET_ITEM(result, 0);
    Py_INCREF(value);
    Py_DECREF(result);
    *w = offset >> 2;
    return value;
}

/* A String payload (u32 length at word w + 1): a str, or NULL with *plain = 0 when it is
 * not plain UTF-8 and the Python reader must decide. */
static PyObject *
read_text(const Input *in, Py_ssize_t *w, int *plain)
{
    Py_ssize_t start, stop, next;
    const unsigned char *s;
    PyObject *text;
    *plain = 1;
    if (!has_words(in, *w + 1, 1)) {
        return truncated();
    }
    start = (*w + 2) * 4;
    stop = start + (Py_ssize_t)u32_at(in->buf + start - 4);
    next = (stop + 3) >> 2;
    if (next * 4 > in->len) {
        PyErr_Format(decode_error, "string at offset %zd exceeds the data", start - 8);
        return NULL;
    }
    s = in->buf + start;
    if (memchr(s, 0, (size_t)(stop - start)) != NULL ||
        (stop - start >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)) {
        *plain = 0; /* Godot stops at a NUL and skips a BOM: the Python reader does both */
        return NULL;
    }
    text = PyUnicode_DecodeUTF8((const char *)s, stop - start, NULL);
    if (text == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            return NULL;
        }
        PyErr_Clear();
        *plain = 0;
        return NULL;
    }
    *w = next;
    return text;
}

static PyObject *decode_value(const Input *in, Py_ssize_t *w, int depth);

/* An Array or Dictionary whose header is at word *w. */
static PyObject *
read_container(const Input *in, Py_ssize_t *w, uint32_t header, int depth)
{
    int is_dict = (header & 0xFF) == 27;
    Py_ssize_t count, elements, left, i;
    PyObject *value;
    if (header & TYPED_MASK) { /* typed (Godot 4.3+): the Python helper skips the types */
        PyObject *pos = PyObject_CallFunction(typed_container, "OnnkO", in->data,
                                              (*w + 1) * 4, in->len, (unsigned long)header,
                                              is_dict ? Py_True : Py_False);
        Py_ssize_t offset;
        if (pos == NULL) {
            return NULL;
        }
        offset = PyLong_AsSsize_t(pos);
        Py_DECREF(pos);
        if (offset < 0) {
            return PyErr_Occurred() ? NULL : truncated();
        }
        *w = offset >> 2;
    }
    else {
        *w += 1;
    }
    if (!has_words(in, *w, 1)) {
        return truncated();
    }
    count = (Py_ssize_t)(u32_at(in->buf + *w * 4) & 0x7FFFFFFFu);
    *w += 1;
    if (count == 0) {
        return is_dict ? PyDict_New() : PyList_New(0);
    }
    elements = is_dict ? 2 * count : count;
    left = in->len - *w * 4;
    if (elements > left / 4) { /* every element takes at least 4 bytes */
        PyErr_Format(decode_error,
                     "container at offset %zd claims %zd elements; only %zd bytes remain",
                     (*w - 2) * 4, elements, left);
        return NULL;
    }
    if (depth >= MAX_DEPTH) {
        PyErr_Format(decode_error, "nesting deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    if (!is_dict) {
        value = PyList_New(count);
        if (value == NULL) {
            return NULL;
        }
        for (i = 0; i < count; i++) {
            PyObject *item = decode_value(in, w, depth + 1);
            if (item == NULL) {
                Py_DECREF(value);
                return NULL;
            }
            PyList_SET_ITEM(value, i, item);
        }
        return value;
    }
    value = PyDict_New();
    if (value == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        PyObject *key = decode_value(in, w, depth + 1);
        PyObject *item;
        int failed;
        if (key == NULL) {
            Py_DECREF(value);
            return NULL;
        }
        item = decode_value(in, w, depth + 1);
        if (item == NULL) {
            Py_DECREF(key);
            Py_DECREF(value);
            return NULL;
        }
        /* Later duplicates replace earlier ones, as Godot's d[key] = value. */
        failed = PyDict_SetItem(value, key, item) < 0;
        Py_DECREF(key);
        Py_DECREF(item);
        if (failed) {
            Py_DECREF(value);
            if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_SetString(decode_error,
                                "a Dictionary key is an Array or Dictionary (not hashable)");
            }
            return NULL;
        }
    }
    return value;
}

/* PackedVector2Array of 32-bit floats; its header is at word *w. */
static PyObject *
read_packed_vector2(const Input *in, Py_ssize_t *w)
{
    Py_ssize_t count, left, i;
    PyObject *values, *result;
    if (!has_words(in, *w + 1, 1)) {
        return truncated();
    }
    count = (Py_ssize_t)u32_at(in->buf + (*w + 1) * 4);
    *w += 2;
    left = in->len - *w * 4;
    if (count > 0x7FFFFFFF || count > left / 8) {
        PyErr_Format(decode_error,
                     "PackedVector2Array at offset %zd claims %zd items; only %zd bytes remain",
                     (*w - 2) * 4, count, left);
        return NULL;
    }
    values = PyTuple_New(count);
    if (values == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        PyObject *vector = make_floats(in, *w + 2 * i, &makers[VECTOR2]);
        if (vector == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyTuple_SET_ITEM(values, i, vector);
    }
    *w += 2 * count;
    result = values;
    return make(&makers[PACKED_VECTOR2], &result);
}

static PyObject *
decode_value(const Input *in, Py_ssize_t *w, int depth)
{
    uint32_t header, word;
    PyObject *value;
    int plain;
    if (!has_words(in, *w, 1)) {
        return truncated();
    }
    header = u32_at(in->buf + *w * 4);
    switch (header & 0xFF) {
    case 0: /* NIL */
        *w += 1;
        Py_RETURN_NONE;
    case 1: /* BOOL */
        if (!has_words(in, *w + 1, 1)) {
            return truncated();
        }
        word = u32_at(in->buf + (*w + 1) * 4);
        *w += 2;
        return PyBool_FromLong(word != 0);
    case 2: /* INT */
        if (header & FLAG_64) {
            if ((*w + 1) * 4 + 8 > in->len) {
                return truncated();
            }
            value = PyLong_FromLongLong((long long)(int64_t)u64_at(in->buf + (*w + 1) * 4));
            *w += 3;
            return value;
        }
        if (!has_words(in, *w + 1, 1)) {
            return truncated();
        }
        value = PyLong_FromLong((long)(int32_t)u32_at(in->buf + (*w + 1) * 4));
        *w += 2;
        return value;
    case 3: /* FLOAT */
        if (header & FLAG_64) {
            uint64_t bits;
            double number;
            if ((*w + 1) * 4 + 8 > in->len) {
                return truncated();
            }
            bits = u64_at(in->buf + (*w + 1) * 4);
            memcpy(&number, &bits, sizeof number);
            *w += 3;
            return PyFloat_FromDouble(number);
        }
        if (!has_words(in, *w + 1, 1)) {
            return truncated();
        }
        value = PyFloat_FromDouble((double)f32_at(in->buf + (*w + 1) * 4));
        *w += 2;
        return value;
    case 4: /* STRING */
        value = read_text(in, w, &plain);
        return plain ? value : delegate(in, w, header);
    case 21: /* STRING_NAME */
        value = read_text(in, w, &plain);
        if (!plain) {
            return delegate(in, w, header);
        }
        return value == NULL ? NULL : make(&makers[STRING_NAME], &value);
    case 5: /* VECTOR2 */
        if (header & FLAG_64) {
            return delegate(in, w, header);
        }
        value = make_floats(in, *w + 1, &makers[VECTOR2]);
        *w += 3;
        return value;
    case 9: /* VECTOR3 */
        if (header & FLAG_64) {
            return delegate(in, w, header);
        }
        value = make_floats(in, *w + 1, &makers[VECTOR3]);
        *w += 4;
        return value;
    case 6: { /* VECTOR2I */
        PyObject *values[2];
        if (!has_words(in, *w + 1, 2)) {
            return truncated();
        }
        values[0] = PyLong_FromLong((long)(int32_t)u32_at(in->buf + (*w + 1) * 4));
        values[1] = PyLong_FromLong((long)(int32_t)u32_at(in->buf + (*w + 2) * 4));
        *w += 3;
        return make(&makers[VECTOR2I], values);
    }
    case 20: /* COLOR: always 32-bit floats */
        value = make_floats(in, *w + 1, &makers[COLOR]);
        *w += 5;
        return value;
    case 27: /* DICTIONARY */
    case 28: /* ARRAY */
        return read_container(in, w, header, depth);
    case 35: /* PACKED_VECTOR2_ARRAY */
        if (header & FLAG_64) {
            return delegate(in, w, header);
        }
        return read_packed_vector2(in, w);
    default:
        return delegate(in, w, header);
    }
}

static PyObject *
decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Input in;
    Py_ssize_t pos, w;
    PyObject *value;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "configure() was not called");
        return NULL;
    }
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode(data: bytes, pos: int)");
        return NULL;
    }
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0 || pos & 3) {
        PyErr_SetString(PyExc_ValueError, "pos must be a non-negative multiple of 4");
        return NULL;
    }
    in.data = args[0];
    in.buf = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    in.len = PyBytes_GET_SIZE(args[0]);
    in.end4 = in.len & ~(Py_ssize_t)3;
    w = pos >> 2;
    value = decode_value(&in, &w, 0);
    if (value == NULL) {
        return NULL;
    }
    return Py_BuildValue("Nn", value, w * 4);
}

static int
set_maker(Maker *m, PyObject *spec)
{
    PyObject *type, *fields;
    Py_ssize_t i, n;
    if (!PyArg_ParseTuple(spec, "O!O!", &PyType_Type, &type, &PyTuple_Type, &fields)) {
        return -1;
    }
    n = PyTuple_GET_SIZE(fields);
    if (n < 1 || n > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "a value class needs 1 to 4 fields");
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (Py_TYPE(PyTuple_GET_ITEM(fields, i))->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "fields must be slot descriptors");
            return -1;
        }
    }
    Py_XDECREF(m->type);
    for (i = 0; i < m->n; i++) {
        Py_CLEAR(m->fields[i]);
    }
    Py_INCREF(type);
    m->type = (PyTypeObject *)type;
    m->n = (int)n;
    for (i = 0; i < n; i++) {
        m->fields[i] = PyTuple_GET_ITEM(fields, i);
        Py_INCREF(m->fields[i]);
    }
    return 0;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *error, *reader_list, *typed, *specs;
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "OO!OO!", &error, &PyList_Type, &reader_list, &typed,
                          &PyTuple_Type, &specs)) {
        return NULL;
    }
    if (PyList_GET_SIZE(reader_list) != 256) {
        PyErr_SetString(PyExc_ValueError, "readers must be a list of 256 entries");
        return NULL;
    }
    if (PyTuple_GET_SIZE(specs) != N_MAKERS) {
        PyErr_Format(PyExc_ValueError, "expected %d value classes", N_MAKERS);
        return NULL;
    }
    for (i = 0; i < N_MAKERS; i++) {
        if (set_maker(&makers[i], PyTuple_GET_ITEM(specs, i)) < 0) {
            configured = 0;
            return NULL;
        }
    }
    Py_INCREF(error);
    Py_XSETREF(decode_error, error);
    Py_INCREF(reader_list);
    Py_XSETREF(readers, reader_list);
    Py_INCREF(typed);
    Py_XSETREF(typed_container, typed);
    configured = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(DecodeError, readers, typed_container, value_classes): set up decode()."},
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(data, pos) -> (value, end): the variant at data[pos] (pos a multiple of 4)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "trionet._variant_speedups",
    "The compiled decoding loop of trionet's Godot variant codec (optional).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__variant_speedups(void)
{
    return PyModule_Create(&module_def);
}
