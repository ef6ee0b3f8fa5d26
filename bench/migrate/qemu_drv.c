/*
 * qemu_drv.c - two qemu-system-aarch64 processes and their QMP sockets, for
 * measuring QEMU's own multifd migration on the same machine, in the same
 * run, as tagmem's (bench/migrate/vs_qemu.c). QMP is one JSON object per
 * line; the few fields needed are picked out of the lines by name, which is
 * enough for replies and events QEMU itself writes. QMP commands used
 * (qapi/migration.json): qmp_capabilities, migrate-set-capabilities
 * (multifd, events), migrate-set-parameters (multifd-channels,
 * max-bandwidth: QEMU's default of 128 MiB/s would measure the throttle),
 * migrate-incoming (the destination was started with -incoming defer, as
 * multifd requires), migrate, query-migrate, quit.
 */
#include "bench/migrate/qemu_drv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define QMP_LINE 65536

struct qmp {
	int fd;
	char buf[QMP_LINE];
	size_t len;
	int mig_state;          /* from MIGRATION events: 0, 1 completed, -1 failed */
};

struct qproc {
	pid_t pid;
	struct qmp q;
	char log[600];
};

static int msgf(char *msg, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- finding QEMU -------------------------------------------------- */

static bool executable(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static int find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return executable(out) ? 0 : -ENOENT;
	}
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		snprintf(out, len, "%.*s/%s", (int)n, p, name);
		if (n && executable(out))
			return 0;
		p += n + (e != NULL);
	}
	return -ENOENT;
}

int tm_qemu_find(const char *name, tm_qemu_bin *q, char *msg, size_t len)
{
	char cmd[600];
	FILE *f;

	memset(q, 0, sizeof(*q));
	if (find_in_path(name, q->path, sizeof(q->path)))
		return msgf(msg, len, -ENOENT,
			    "%s is not installed (not found in PATH); on Debian: "
			    "apt-get install -y --no-install-recommends qemu-system-arm "
			    "(10.0.2 from bookworm-backports, see scripts/deps.sh)", name);
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", q->path);
	f = popen(cmd, "r");
	if (!f || !fgets(q->version, sizeof(q->version), f)) {
		if (f)
			pclose(f);
		return msgf(msg, len, -ENOENT, "%s does not run (--version failed)",
			    q->path);
	}
	pclose(f);
	q->version[strcspn(q->version, "\n")] = 0;
	return 0;
}

/* ---- QMP ----------------------------------------------------------- */

/* The value of "key" in a JSON line: a string (copied without quotes) or
 * a number (copied as text). false when absent. */
static bool json_field(const char *line, const char *key, char *out, size_t len)
{
	char pat[80];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p == '"') {
		e = strchr(++p, '"');
	} else {
		e = p;
		while (*e && *e != ',' && *e != '}' && *e != ' ')
			e++;
	}
	if (!e)
		return false;
	snprintf(out, len, "%.*s", (int)(e - p), p);
	return true;
}

static uint64_t json_u64(const char *line, const char *key)
{
	char v[64];

	return json_field(line, key, v, sizeof(v)) ? strtoull(v, NULL, 10) : 0;
}

/* Note what a MIGRATION event says. */
static void qmp_event(struct qmp *q, const char *line)
{
	char ev[64], st[64];

	if (!json_field(line, "event", ev, sizeof(ev)) || strcmp(ev, "MIGRATION"))
		return;
	if (!json_field(line, "status", st, sizeof(st)))
		return;
	if (strcmp(st, "completed") == 0)
		q->mig_state = 1;
	else if (strcmp(st, "failed") == 0 || strcmp(st, "cancelled") == 0)
		q->mig_state = -1;
}

/* One line (without its newline) within timeout_ms: 0, -ETIMEDOUT, -EPIPE. */
static int qmp_line(struct qmp *q, char *out, size_t cap, int timeout_ms)
{
	uint64_t end = tm_now_ns() + (uint64_t)timeout_ms * 1000000u;

	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			size_t n = (size_t)(nl - q->buf);

			snprintf(out, cap, "%.*s", (int)n, q->buf);
			memmove(q->buf, nl + 1, q->len - n - 1);
			q->len -= n + 1;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			q->len = 0;     /* a line longer than we care for */
		uint64_t now = tm_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = q->fd, .events = POLLIN };
		int r = poll(&pf, 1, (int)((end - now) / 1000000u) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n <= 0)
			return -EPIPE;
		q->len += (size_t)n;
	}
}

/* Send one command and wait for its reply line (events seen on the way
 * are noted). 0 on "return", -EIO on "error" (desc copied to msg). */
static int qmp_cmd(struct qmp *q, const char *json, char *reply, size_t cap,
		   char *msg, size_t len)
{
	static char line[QMP_LINE];
	size_t n = strlen(json);
	int rc;

	if (tm_write_full(q->fd, json, n) || tm_write_full(q->fd, "\n", 1))
		return msgf(msg, len, -EPIPE, "QMP: cannot send %s", json);
	for (;;) {
		rc = qmp_line(q, line, sizeof(line), 30000);
		if (rc)
			return msgf(msg, len, rc, "QMP: no reply to %s", json);
		if (strstr(line, "\"event\"")) {
			qmp_event(q, line);
			continue;
		}
		if (reply)
			snprintf(reply, cap, "%s", line);
		if (strstr(line, "\"return\""))
			return 0;
		char desc[400] = "?";
		json_field(line, "desc", desc, sizeof(desc));
		return msgf(msg, len, -EIO, "QMP %s: %s", json, desc);
	}
}

static int qmp_open(struct qmp *q, const char *path, pid_t pid, char *msg,
		    size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[4096];

	memset(q, 0, sizeof(*q));
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	for (int i = 0; i < 400; i++) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd >= 0 && connect(q->fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		if (q->fd >= 0)
			close(q->fd);
		q->fd = -1;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return msgf(msg, len, -ECHILD, "QEMU exited before its QMP "
				    "socket %s opened", path);
		nanosleep(&(struct timespec){ 0, 25 * 1000 * 1000 }, NULL);
	}
	if (q->fd < 0)
		return msgf(msg, len, -ETIMEDOUT, "QMP socket %s never opened", path);
	if (qmp_line(q, line, sizeof(line), 10000))
		return msgf(msg, len, -EPROTO, "QMP %s: no greeting", path);
	return qmp_cmd(q, "{\"execute\": \"qmp_capabilities\"}", NULL, 0, msg, len);
}

/* ---- processes ------------------------------------------------------ */

static int spawn(const tm_qemu_bin *qb, struct qproc *p, const char *role,
		 const char *ram, const char *qmp, const char *workdir,
		 uint64_t size, bool incoming, char *msg, size_t len)
{
	char mem[700], qmparg[600], mb[32];
	const char *argv[24];
	int a = 0;

	snprintf(p->log, sizeof(p->log), "%s/qemu-%s.log", workdir, role);
	snprintf(mem, sizeof(mem),
		 "memory-backend-file,id=ram0,size=%llu,mem-path=%s,share=on",
		 (unsigned long long)size, ram);
	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", qmp);
	snprintf(mb, sizeof(mb), "%lluM", (unsigned long long)(size >> 20));
	argv[a++] = qb->path;
	argv[a++] = "-machine";
	argv[a++] = "virt,memory-backend=ram0";
	argv[a++] = "-cpu";
	argv[a++] = "max";
	argv[a++] = "-m";
	argv[a++] = mb;
	argv[a++] = "-object";
	argv[a++] = mem;
	argv[a++] = "-nodefaults";
	argv[a++] = "-display";
	argv[a++] = "none";
	argv[a++] = "-qmp";
	argv[a++] = qmparg;
	if (incoming) {
		argv[a++] = "-incoming";
		argv[a++] = "defer";
	} else {
		argv[a++] = "-S";       /* paused: the guest never runs */
	}
	argv[a] = NULL;
	unlink(qmp);
	p->pid = fork();
	if (p->pid < 0)
		return msgf(msg, len, -errno, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		int lf = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);

		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		execv(qb->path, (char *const *)argv);
		_exit(127);
	}
	return qmp_open(&p->q, qmp, p->pid, msg, len);
}

/* The last line QEMU wrote to its log: usually why it stopped. */
static void log_tail(const struct qproc *p, char *out, size_t len)
{
	FILE *f = fopen(p->log, "r");
	char line[400];

	snprintf(out, len, "(no output)");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(out, len, "%.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/* user+system seconds of a process, from /proc/PID/stat (fields 14, 15). */
static double proc_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void stop(struct qproc *p)
{
	char ignore[64];

	if (p->pid <= 0)
		return;
	if (p->q.fd >= 0) {
		qmp_cmd(&p->q, "{\"execute\": \"quit\"}", NULL, 0, ignore, sizeof(ignore));
		close(p->q.fd);
		p->q.fd = -1;
	}
	for (int i = 0; i < 200; i++) {
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			return;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

/* ---- one migration --------------------------------------------------- */

static int setup_side(struct qproc *p, unsigned channels, char *msg, size_t len)
{
	char cmd[300];
	int rc;

	rc = qmp_cmd(&p->q, "{\"execute\": \"migrate-set-capabilities\", "
		     "\"arguments\": {\"capabilities\": ["
		     "{\"capability\": \"multifd\", \"state\": true}, "
		     "{\"capability\": \"events\", \"state\": true}]}}",
		     NULL, 0, msg, len);
	if (rc)
		return rc;
	snprintf(cmd, sizeof(cmd), "{\"execute\": \"migrate-set-parameters\", "
		 "\"arguments\": {\"multifd-channels\": %u, "
		 "\"max-bandwidth\": 1099511627776}}", channels);
	return qmp_cmd(&p->q, cmd, NULL, 0, msg, len);
}

/* Wait for the destination's MIGRATION event (watching the source's too). */
static int wait_done(struct qproc *src, struct qproc *dst, char *msg, size_t len)
{
	static char line[QMP_LINE];
	uint64_t end = tm_now_ns() + 600ull * 1000000000u;

	while (dst->q.mig_state == 0 && src->q.mig_state >= 0) {
		struct pollfd pf[2] = { { .fd = dst->q.fd, .events = POLLIN },
					{ .fd = src->q.fd, .events = POLLIN } };

		if (tm_now_ns() > end)
			return msgf(msg, len, -ETIMEDOUT, "QEMU migration did not "
				    "complete in 600 s");
		/* Lines already buffered first, then the sockets. */
		for (int i = 0; i < 2; i++) {
			struct qmp *q = i ? &src->q : &dst->q;

			while (memchr(q->buf, '\n', q->len) &&
			       qmp_line(q, line, sizeof(line), 0) == 0)
				qmp_event(q, line);
		}
		if (dst->q.mig_state || src->q.mig_state < 0)
			break;
		if (poll(pf, 2, 1000) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			struct qmp *q = i ? &src->q : &dst->q;

			if (pf[i].revents && qmp_line(q, line, sizeof(line), 1000) == 0)
				qmp_event(q, line);
			else if (pf[i].revents & (POLLHUP | POLLERR))
				return msgf(msg, len, -EPIPE, "QEMU %s exited during the "
					    "migration", i ? "source" : "destination");
		}
	}
	if (dst->q.mig_state == 1)
		return 0;
	return msgf(msg, len, -EIO, "QEMU migration failed");
}

/* The source's view once it has finished too. */
static int source_stats(struct qproc *src, tm_qemu_result *res, char *msg,
			size_t len)
{
	static char reply[QMP_LINE];
	char st[64] = "";

	for (int i = 0; i < 1000; i++) {
		int rc = qmp_cmd(&src->q, "{\"execute\": \"query-migrate\"}", reply,
				 sizeof(reply), msg, len);

		if (rc)
			return rc;
		json_field(reply, "status", st, sizeof(st));
		if (strcmp(st, "completed") == 0)
			break;
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	if (strcmp(st, "completed"))
		return msgf(msg, len, -EIO, "QEMU source reports status '%s'", st);
	res->total_time_ms = json_u64(reply, "total-time");
	res->transferred = json_u64(reply, "transferred");
	res->duplicate = json_u64(reply, "duplicate");
	res->normal = json_u64(reply, "normal");
	return 0;
}

int tm_qemu_migrate(const tm_qemu_bin *q, const char *src_ram,
		    const char *dst_ram, const char *workdir, uint64_t size,
		    unsigned channels, tm_qemu_result *res, char *msg, size_t len)
{
	struct qproc src = { .pid = 0, .q = { .fd = -1 } };
	struct qproc dst = { .pid = 0, .q = { .fd = -1 } };
	char sq[300], dq[300], mig[300], cmd[400], tail[400];
	double cpu0 = 0;
	uint64_t t0 = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	if (size % (1u << 20))
		return msgf(msg, len, -EINVAL, "QEMU guest RAM must be whole MiB");
	snprintf(sq, sizeof(sq), "%s/qemu-src.qmp", workdir);
	snprintf(dq, sizeof(dq), "%s/qemu-dst.qmp", workdir);
	snprintf(mig, sizeof(mig), "%s/qemu-mig.sock", workdir);
	unlink(dst_ram);
	unlink(mig);
	rc = spawn(q, &dst, "dst", dst_ram, dq, workdir, size, true, msg, len);
	if (rc == 0)
		rc = spawn(q, &src, "src", src_ram, sq, workdir, size, false, msg, len);
	if (rc == 0)
		rc = setup_side(&dst, channels, msg, len);
	if (rc == 0)
		rc = setup_side(&src, channels, msg, len);
	snprintf(cmd, sizeof(cmd), "{\"execute\": \"migrate-incoming\", "
		 "\"arguments\": {\"uri\": \"unix:%s\"}}", mig);
	if (rc == 0)
		rc = qmp_cmd(&dst.q, cmd, NULL, 0, msg, len);
	snprintf(cmd, sizeof(cmd), "{\"execute\": \"migrate\", "
		 "\"arguments\": {\"uri\": \"unix:%s\"}}", mig);
	if (rc == 0) {
		cpu0 = proc_cpu(src.pid) + proc_cpu(dst.pid);
		t0 = tm_now_ns();
		rc = qmp_cmd(&src.q, cmd, NULL, 0, msg, len);
	}
	if (rc == 0)
		rc = wait_done(&src, &dst, msg, len);
	if (rc == 0) {
		res->secs = (double)(tm_now_ns() - t0) / 1e9;
		res->cpu_secs = proc_cpu(src.pid) + proc_cpu(dst.pid) - cpu0;
		rc = source_stats(&src, res, msg, len);
	}
	if (rc && (src.pid > 0 || dst.pid > 0)) {
		char m[400];

		log_tail(src.pid > 0 ? &src : &dst, tail, sizeof(tail));
		snprintf(m, sizeof(m), "%.250s (QEMU said: %.120s)", msg, tail);
		snprintf(msg, len, "%s", m);
	}
	stop(&src);
	stop(&dst);
	unlink(dst_ram);
	unlink(mig);
	unlink(sq);
	unlink(dq);
	return rc;
}
