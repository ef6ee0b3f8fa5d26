/*
 * trace.c - the storage simulator's trace text format (docs/FORMAT.md
 * §storage-trace): parsing with full validation (syntax, and the lifetime
 * of every object id: no use before alloc or after free, no free while
 * pinned, no unpin without pin, tags only on movable folios), remapping of
 * the text's ids to dense ids, and writing events back out as a trace.
 *
 * The parser builds everything in its own buffers and fills the caller's
 * tm_ss_trace only when the whole text is valid.
 */
#include "tagmem/storage_sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_MAGIC "tagmem-storage-trace"
#define TRACE_VERSION 1
#define LINE_MAX_BYTES 256
#define NIL UINT32_MAX

/* Open-addressing map from text ids to the dense id they currently name. */
struct idmap {
	uint32_t *key, *val;
	uint32_t cap, used;
};

struct slot {
	uint8_t kind, tagged, live;
	uint32_t pins;
	uint32_t text_id;
};

struct parser {
	const char *name;
	unsigned line;
	struct idmap map;
	struct slot *slot;
	uint32_t nslot, capslot;
	uint32_t *spare;
	uint32_t nspare, capspare;
	tm_ss_event *ev;
	size_t n, cap;
	tm_error *err;
};

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	return x ^ (x >> 16);
}

static uint32_t *map_find(struct idmap *m, uint32_t key)
{
	for (uint32_t i = hash32(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
		if (m->val[i] == NIL - 1 || m->key[i] == key)
			return &m->val[i];
}

static int map_grow(struct idmap *m)
{
	struct idmap n = { .cap = m->cap ? m->cap * 2 : 1024, .used = m->used };

	n.key = malloc(n.cap * sizeof(uint32_t));
	n.val = malloc(n.cap * sizeof(uint32_t));
	if (!n.key || !n.val) {
		free(n.key);
		free(n.val);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n.cap; i++) {
		n.key[i] = 0;
		n.val[i] = NIL - 1; /* empty marker */
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (m->val[i] == NIL - 1)
			continue;
		uint32_t *v = map_find(&n, m->key[i]);

		v[0] = m->val[i];
		n.key[v - n.val] = m->key[i];
	}
	free(m->key);
	free(m->val);
	*m = n;
	return 0;
}

/* Dense id the text id names now, or NIL. */
static uint32_t map_get(struct idmap *m, uint32_t key)
{
	uint32_t v = *map_find(m, key);

	return v == NIL - 1 ? NIL : v;
}

static int map_put(struct idmap *m, uint32_t key, uint32_t val)
{
	if ((m->used + 1) * 2 > m->cap && map_grow(m))
		return -ENOMEM;
	uint32_t *v = map_find(m, key);

	if (*v == NIL - 1) {
		m->used++;
		m->key[v - m->val] = key;
	}
	*v = val;
	return 0;
}

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A syntax or lifetime error, naming the trace and the line. */
static int perr(struct parser *p, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return tm_error_set(p->err, -EINVAL, "trace %s line %u: %s", p->name, p->line, what);
}

static int grow(void **buf, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 4096;

	while (nc < need)
		nc *= 2;
	void *n = realloc(*buf, nc * size);

	if (!n)
		return -ENOMEM;
	*buf = n;
	*cap = nc;
	return 0;
}

static int push(struct parser *p, uint32_t obj, unsigned op, unsigned order, unsigned kind,
		unsigned flags)
{
	if (grow((void **)&p->ev, &p->cap, p->n + 1, sizeof(tm_ss_event)))
		return tm_error_set(p->err, -ENOMEM, "trace %s: out of memory at line %u", p->name, p->line);
	tm_ss_event e = { .obj = obj, .op = (uint8_t)op, .order = (uint8_t)order,
			  .kind = (uint8_t)kind, .flags = (uint8_t)flags };

	p->ev[p->n++] = e;
	return 0;
}

/* Split a line into at most 6 blank-separated tokens (in place). */
static int tokenize(char *line, char **tok)
{
	int n = 0;

	for (char *c = line; *c;) {
		while (*c == ' ' || *c == '\t')
			*c++ = '\0';
		if (!*c)
			break;
		if (n == 6)
			return 7;
		tok[n++] = c;
		while (*c && *c != ' ' && *c != '\t')
			c++;
	}
	return n;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int new_slot(struct parser *p, uint32_t text_id, uint32_t *out)
{
	uint32_t d;

	if (p->nspare) {
		d = p->spare[--p->nspare];
	} else {
		size_t cap = p->capslot;

		if (grow((void **)&p->slot, &cap, p->nslot + 1, sizeof(struct slot)))
			return -ENOMEM;
		p->capslot = (uint32_t)cap;
		d = p->nslot++;
	}
	memset(&p->slot[d], 0, sizeof(p->slot[d]));
	p->slot[d].text_id = text_id;
	p->slot[d].live = 1;
	if (map_put(&p->map, text_id, d))
		return -ENOMEM;
	*out = d;
	return 0;
}

static int release_slot(struct parser *p, uint32_t d)
{
	size_t cap = p->capspare;

	if (grow((void **)&p->spare, &cap, p->nspare + 1, sizeof(uint32_t)))
		return -ENOMEM;
	p->capspare = (uint32_t)cap;
	p->slot[d].live = 0;
	p->spare[p->nspare++] = d;
	return map_put(&p->map, p->slot[d].text_id, NIL);
}

static int parse_alloc(struct parser *p, char **tok, int n, uint32_t id)
{
	uint32_t order, d;
	unsigned kind = TM_SS_KIND_COUNT, flags = 0;

	if (n < 4 || n > 5)
		return perr(p, "alloc takes ID ORDER KIND [tagged]");
	if (parse_u32(tok[2], TM_SS_MAX_ORDER, &order))
		return perr(p, "order '%s' is not 0..%u", tok[2], TM_SS_MAX_ORDER);
	for (unsigned k = 0; k < TM_SS_KIND_COUNT; k++)
		if (strcmp(tok[3], tm_ss_kind_name((tm_ss_kind)k)) == 0)
			kind = k;
	if (kind == TM_SS_KIND_COUNT)
		return perr(p, "kind '%s' is not movable, pagecache, unmovable or reclaimable", tok[3]);
	if (n == 5) {
		if (strcmp(tok[4], "tagged") != 0)
			return perr(p, "unexpected '%s' after the kind (only 'tagged')", tok[4]);
		if (kind != TM_SS_MOVABLE)
			return perr(p, "only movable folios can be tagged, not %s", tok[3]);
		flags = TM_SS_EV_TAGGED;
	}
	if (map_get(&p->map, id) != NIL)
		return perr(p, "alloc of id %s, which is already allocated", tok[1]);
	if (new_slot(p, id, &d))
		return tm_error_set(p->err, -ENOMEM, "trace %s: out of memory", p->name);
	p->slot[d].kind = (uint8_t)kind;
	p->slot[d].tagged = flags != 0;
	return push(p, d, TM_SS_OP_ALLOC, order, kind, flags);
}

/* Lifetime rules of the events that name a live object. */
static int check_use(struct parser *p, unsigned op, struct slot *sl, const char *id)
{
	switch (op) {
	case TM_SS_OP_FREE:
		if (sl->pins)
			return perr(p, "free of id %s, which is pinned %u time(s)", id, sl->pins);
		return 0;
	case TM_SS_OP_TAG:
		if (sl->kind != TM_SS_MOVABLE)
			return perr(p, "tag of id %s: only movable folios can be tagged", id);
		if (sl->tagged)
			return perr(p, "tag of id %s, which is already tagged", id);
		return 0;
	case TM_SS_OP_UNPIN:
		if (!sl->pins)
			return perr(p, "unpin of id %s, which is not pinned", id);
		return 0;
	default:
		return 0;
	}
}

static int parse_use(struct parser *p, unsigned op, char **tok, int n, uint32_t id)
{
	unsigned flags = 0;
	int r;

	if (op == TM_SS_OP_PIN && n == 3) {
		if (strcmp(tok[2], "longterm") != 0)
			return perr(p, "unexpected '%s' after the id (only 'longterm')", tok[2]);
		flags = TM_SS_EV_LONGTERM;
	} else if (n != 2) {
		return perr(p, "%s takes one id and nothing else", tok[0]);
	}
	uint32_t d = map_get(&p->map, id);

	if (d == NIL)
		return perr(p, "%s of id %s, which is not allocated", tok[0], tok[1]);
	struct slot *sl = &p->slot[d];

	if ((r = check_use(p, op, sl, tok[1])))
		return r;
	if (op == TM_SS_OP_TAG)
		sl->tagged = 1;
	else if (op == TM_SS_OP_PIN)
		sl->pins++;
	else if (op == TM_SS_OP_UNPIN)
		sl->pins--;
	if ((r = push(p, d, op, 0, 0, flags)))
		return r;
	if (op == TM_SS_OP_FREE && release_slot(p, d))
		return tm_error_set(p->err, -ENOMEM, "trace %s: out of memory", p->name);
	return 0;
}

static int parse_event(struct parser *p, char **tok, int n)
{
	uint32_t id;
	unsigned op = TM_SS_OP_COUNT;

	for (unsigned o = 0; o < TM_SS_OP_COUNT; o++)
		if (strcmp(tok[0], tm_ss_op_name((tm_ss_op)o)) == 0)
			op = o;
	if (op == TM_SS_OP_COUNT)
		return perr(p, "unknown event '%s' (alloc, free, tag, pin, unpin, read)", tok[0]);
	if (n < 2 || parse_u32(tok[1], NIL - 1, &id))
		return perr(p, "%s needs an id 0..4294967294 as its first argument", tok[0]);
	if (op == TM_SS_OP_ALLOC)
		return parse_alloc(p, tok, n, id);
	return parse_use(p, op, tok, n, id);
}

static int parse_line(struct parser *p, char *line, bool *seen_header)
{
	char *tok[6];
	char *hash = strchr(line, '#');

	if (hash)
		*hash = '\0';
	int n = tokenize(line, tok);

	if (n == 0)
		return 0;
	if (n > 6)
		return perr(p, "too many fields");
	if (!*seen_header) {
		uint32_t v;

		if (strcmp(tok[0], TRACE_MAGIC) != 0 || n != 2 || parse_u32(tok[1], 1000, &v))
			return perr(p, "expected the header '" TRACE_MAGIC " 1' first");
		if (v != TRACE_VERSION)
			return perr(p, "trace format version %u is not supported (only 1)", v);
		*seen_header = true;
		return 0;
	}
	return parse_event(p, tok, n);
}

static void parser_free(struct parser *p)
{
	free(p->map.key);
	free(p->map.val);
	free(p->slot);
	free(p->spare);
	free(p->ev);
}

static int parse_all(struct parser *p, const char *text, size_t len)
{
	bool header = false;
	char line[LINE_MAX_BYTES + 2];

	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p->line++;
		if (l > 0 && text[pos + l - 1] == '\r')
			l--;
		if (l > LINE_MAX_BYTES)
			return perr(p, "longer than %u bytes", LINE_MAX_BYTES);
		memcpy(line, text + pos, l);
		line[l] = '\0';
		if (memchr(line, '\0', l))
			return perr(p, "contains a NUL byte");
		int r = parse_line(p, line, &header);

		if (r)
			return r;
		pos += (nl ? (size_t)(nl - (text + pos)) + 1 : len - pos);
	}
	if (!header)
		return tm_error_set(p->err, -EINVAL, "trace %s: empty (no '" TRACE_MAGIC " 1' header)", p->name);
	return 0;
}

int tm_ss_trace_parse(const char *text, size_t len, const char *name, tm_ss_trace *out,
		      tm_error *err)
{
	struct parser p;

	memset(&p, 0, sizeof(p));
	p.name = name;
	p.err = err;
	if (map_grow(&p.map))
		return tm_error_set(err, -ENOMEM, "trace %s: out of memory", name);
	int r = parse_all(&p, text, len);

	if (r) {
		parser_free(&p);
		return r;
	}
	out->ev = p.ev;
	out->n = p.n;
	out->max_objects = p.nslot ? p.nslot : 1;
	p.ev = NULL;
	parser_free(&p);
	return 0;
}

int tm_ss_trace_load(const char *path, tm_ss_trace *out, tm_error *err)
{
	FILE *f = fopen(path, "rb");

	if (!f) {
		int e = errno;

		return tm_error_set(err, -e, "trace %s: %s", path, strerror(e));
	}
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	do {
		if (grow((void **)&buf, &cap, len + 65536, 1)) {
			free(buf);
			fclose(f);
			return tm_error_set(err, -ENOMEM, "trace %s: out of memory reading it", path);
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	int bad = ferror(f);

	fclose(f);
	if (bad) {
		free(buf);
		return tm_error_set(err, -EIO, "trace %s: read error", path);
	}
	int r = tm_ss_trace_parse(buf, len, path, out, err);

	free(buf);
	return r;
}

void tm_ss_trace_free(tm_ss_trace *t)
{
	free(t->ev);
	t->ev = NULL;
	t->n = 0;
}

static int write_event(FILE *f, const tm_ss_event *e)
{
	switch (e->op) {
	case TM_SS_OP_ALLOC:
		return fprintf(f, "alloc %u %u %s%s\n", e->obj, e->order,
			       tm_ss_kind_name((tm_ss_kind)e->kind),
			       e->flags & TM_SS_EV_TAGGED ? " tagged" : "");
	case TM_SS_OP_PIN:
		return fprintf(f, "pin %u%s\n", e->obj, e->flags & TM_SS_EV_LONGTERM ? " longterm" : "");
	default:
		return fprintf(f, "%s %u\n", tm_ss_op_name((tm_ss_op)e->op), e->obj);
	}
}

int tm_ss_trace_write_header(FILE *f, tm_error *err)
{
	if (fprintf(f, "# tagmem storage-sim trace (docs/FORMAT.md §storage-trace)\n"
		    TRACE_MAGIC " %d\n", TRACE_VERSION) < 0)
		return tm_error_set(err, -EIO, "trace: write failed");
	return 0;
}

int tm_ss_trace_write_events(FILE *f, const tm_ss_event *ev, size_t n, tm_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].op >= TM_SS_OP_COUNT ||
		    (ev[i].op == TM_SS_OP_ALLOC && ev[i].kind >= TM_SS_KIND_COUNT))
			return tm_error_set(err, -EINVAL, "trace: event %zu has op %u kind %u", i,
					    ev[i].op, ev[i].kind);
		if (write_event(f, &ev[i]) < 0)
			return tm_error_set(err, -EIO, "trace: write failed at event %zu", i);
	}
	return 0;
}
