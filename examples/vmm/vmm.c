/*
 * vmm.c - tm-vmm, the reference VMM: runs the MTE guest payload under KVM
 * and moves it, with its tags, using only libtagmem's public API.
 *
 *   tm-vmm migrate-demo     boots the guest, starts a second tm-vmm process
 *                           ("incoming"), live-migrates the running guest
 *                           to it (pre-copy, several channels) and prints
 *                           one JSON object: the destination's guest
 *                           checked every granule against its own log.
 *   tm-vmm incoming ADDR    the destination: receives, resumes, verifies.
 *   tm-vmm snapshot-demo F  boots, saves the guest to snapshot file F, starts
 *                           "restore F" in a fresh process, prints JSON.
 *   tm-vmm restore F        a fresh VMM restored from F, resumed, verified.
 *   tm-vmm refuse-demo      three bad inputs, each refused before a page
 *                           moves, the source guest still running.
 *
 * Guest RAM is one kvm region (tagmem/kvm.h, "slot0@0x40000000"); the
 * vcpu's registers travel as a small extra region ("vcpu0", no tags)
 * written in the pause hook, so the wire format is tagmem's own. The
 * receiving VM runs without dirty logging (KVM refuses tag writes while a
 * slot logs); the source turns logging on through the slot's
 * set_dirty_logging callback when tracking starts.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tagmem/kvm.h"
#include "tagmem/migrate.h"
#include "tagmem/region.h"
#include "tagmem/snapshot.h"
#include "vm.h"

struct opts {
	size_t ram;
	unsigned channels;
	uint64_t seed;
	uint64_t warmup;        /* guest operations before moving it */
	uint32_t downtime_ms;
	const char *guest;
	char self[PATH_MAX];
};

struct vmm {
	struct tvm vm;
	tm_region *ram, *vcpu;
	uint8_t *state;         /* vcpu state buffer, allocated at setup */
	size_t state_len, vcpu_size;
	bool resumed;
	int resume_rc;
	char msg[512];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

/* ---- the VM and its regions ---------------------------------------- */

static int set_logging(void *ctx, uint32_t slot, bool on, tm_error *err)
{
	struct tvm *vm = ctx;
	int rc = tvm_set_dirty_logging(vm, on);

	return rc ? tm_error_set(err, rc, "slot %u: switching dirty logging %s: %s",
				 slot, on ? "on" : "off", strerror(-rc)) : 0;
}

static int make_regions(struct vmm *v, tm_error *err)
{
	tm_kvm_slot s = {
		.vm_fd = v->vm.vm_fd, .slot = v->vm.slot,
		.guest_phys_addr = TMV_RAM_IPA, .memory_size = v->vm.cfg.ram_size,
		.userspace_addr = v->vm.ram, .manual_protect = v->vm.manual_protect,
		.set_dirty_logging = set_logging, .ctx = &v->vm,
	};
	tm_region_config c = { .name = "vcpu0", .backend = TM_BACKEND_SOFT };
	int rc = tm_kvm_region_create(NULL, &s, NULL, &v->ram, err);

	if (rc)
		return rc;
	v->state_len = tvm_state_size(&v->vm);
	v->vcpu_size = (v->state_len + 4095) / 4096 * 4096;
	v->state = calloc(1, v->vcpu_size);
	if (!v->state_len || !v->state)
		return tm_error_set(err, -ENOMEM, "vcpu state: no register list or memory");
	c.size = v->vcpu_size;
	rc = tm_geom_init(&c.geom, TM_META_NONE, 4096, 0, 0, err);
	return rc ? rc : tm_region_create(&c, &v->vcpu, err);
}

static int boot(struct vmm *v, const struct opts *o, bool with_guest,
		size_t ram, char *msg, size_t len)
{
	struct tvm_config c;
	int rc;

	tvm_config_default(&c);
	c.ram_size = ram;
	c.seed = o->seed;
	rc = tvm_create(&v->vm, &c, msg, len);
	if (!rc && with_guest)
		rc = tvm_load_guest(&v->vm, o->guest, msg, len);
	if (!rc && with_guest)
		rc = tvm_start(&v->vm, false, msg, len);
	return rc;
}

static void teardown(struct vmm *v)
{
	tm_region_destroy(v->ram);
	tm_region_destroy(v->vcpu);
	v->ram = v->vcpu = NULL;
	tvm_destroy(&v->vm);
	free(v->state);
	v->state = NULL;
}

/* Run the guest for `ops` more operations, then have it verify itself. */
static int run_and_verify(struct vmm *v, uint64_t ops, struct tmv_report *r)
{
	uint64_t n = tvm_reports(&v->vm);
	int rc = tvm_wait_progress(&v->vm, tvm_progress(&v->vm) + ops, 120000);

	if (rc)
		return rc;
	tvm_set_cmd(&v->vm, TMV_CMD_VERIFY);
	return tvm_wait_report(&v->vm, n, 120000, r);
}

static bool report_clean(const struct tmv_report *r)
{
	return r->granules == r->data_bytes / 16 && r->bad_tags == 0 &&
	       r->bad_data == 0 && r->log_sum_ok;
}

static void print_report(FILE *f, const struct tmv_report *r)
{
	fprintf(f, "{\"ops\":%" PRIu64 ",\"ops_data_tag\":%" PRIu64
		",\"ops_tag_only\":%" PRIu64 ",\"ops_data_only\":%" PRIu64
		",\"granules\":%" PRIu64 ",\"tagged_granules\":%" PRIu64
		",\"bad_tags\":%" PRIu64 ",\"bad_data\":%" PRIu64
		",\"first_bad_ipa\":%" PRIu64 ",\"log_sum_ok\":%s,\"mte_level\":%" PRIu64 "}",
		r->ops, r->ops_data_tag, r->ops_tag_only, r->ops_data_only,
		r->granules, r->tagged_granules, r->bad_tags, r->bad_data,
		r->first_bad_ipa, r->log_sum_ok ? "true" : "false", r->mte_level);
}

/* The vcpu state into the "vcpu0" region (API write: tracked as dirty). */
static int capture_state(struct vmm *v, tm_error *err)
{
	int rc = tvm_state_save(&v->vm, v->state, v->vcpu_size, v->msg, sizeof(v->msg));

	if (rc)
		return tm_error_set(err, rc, "%s", v->msg);
	return tm_region_write(v->vcpu, 0, v->state, v->vcpu_size, err);
}

static int restore_state_and_start(struct vmm *v, tm_error *err)
{
	int rc = tm_region_read(v->vcpu, 0, v->state, v->vcpu_size, err);

	if (!rc && (rc = tvm_state_load(&v->vm, v->state, v->vcpu_size, v->msg,
					sizeof(v->msg))))
		tm_error_set(err, rc, "%s", v->msg);
	if (!rc && (rc = tvm_start(&v->vm, false, v->msg, sizeof(v->msg))))
		tm_error_set(err, rc, "%s", v->msg);
	return rc;
}

/* ---- migration -------------------------------------------------------- */

static int src_pause(void *ctx)
{
	struct vmm *v = ctx;
	tm_error e;
	int rc = tvm_pause(&v->vm);

	if (rc)
		return rc;
	rc = capture_state(v, &e);
	if (rc) {
		fprintf(stderr, "tm-vmm: pause: %s\n", tm_error_msg(&e));
		tvm_resume(&v->vm);
	}
	return rc;
}

static void src_resume(void *ctx)
{
	tvm_resume(&((struct vmm *)ctx)->vm);
}

static void dst_resume(void *ctx)
{
	struct vmm *v = ctx;
	tm_error e;

	tm_error_clear(&e);
	v->resume_rc = restore_state_and_start(v, &e);
	v->resumed = v->resume_rc == 0;
	if (v->resume_rc)
		fprintf(stderr, "tm-vmm: resume: %s\n", tm_error_msg(&e));
}

static int new_migration(struct vmm *v, enum tm_migrate_role role,
			 const struct opts *o, tm_migration **m, tm_error *err)
{
	tm_migrate_config c;
	tm_migrate_hooks h = { .ctx = v };
	int rc;

	tm_migrate_config_default(&c);
	c.channels = o->channels;
	c.downtime_ms = o->downtime_ms;
	c.on_max_iterations = TM_MAXITER_FORCE;
	if (role == TM_MIGRATE_SOURCE) {
		h.pause = src_pause;
		h.resume = src_resume;
	} else {
		h.resume = dst_resume;
	}
	rc = tm_migration_new(m, role, &c, &h, err);
	if (!rc)
		rc = tm_migration_add_region(*m, v->ram, err);
	if (!rc)
		rc = tm_migration_add_region(*m, v->vcpu, err);
	return rc;
}

static int cmd_incoming(const struct opts *o, const char *addr)
{
	struct vmm v = { 0 };
	tm_migration *m = NULL;
	tm_migrate_stats st;
	struct tmv_report r = { 0 };
	tm_error e;
	int lfd = -1, rc;

	tm_error_clear(&e);
	rc = boot(&v, o, false, o->ram, v.msg, sizeof(v.msg));
	if (rc)
		tm_error_set(&e, rc, "%s", v.msg);
	if (!rc)
		rc = make_regions(&v, &e);
	if (!rc)
		rc = tm_migrate_listen(addr, &lfd, &e);
	if (!rc)
		rc = new_migration(&v, TM_MIGRATE_DEST, o, &m, &e);
	if (!rc)
		rc = tm_migration_set_listener(m, lfd, &e);
	if (!rc)
		rc = tm_migration_run(m, &st, &e);
	if (!rc && !v.resumed)
		rc = tm_error_set(&e, v.resume_rc ? v.resume_rc : -EIO,
				  "the guest did not resume on the destination");
	if (!rc) {
		tvm_set_cmd(&v.vm, TMV_CMD_VERIFY);
		rc = tvm_wait_report(&v.vm, 0, 300000, &r);
		if (rc)
			tm_error_set(&e, rc, "guest verification: %s", v.vm.exit_reason);
	}
	printf("{\"role\":\"dest\",\"verified\":%s,\"migration_verified\":%s,\"report\":",
	       !rc && report_clean(&r) ? "true" : "false",
	       !rc && st.verified ? "true" : "false");
	print_report(stdout, &r);
	printf(",\"error\":");
	json_str(stdout, rc ? tm_error_msg(&e) : "");
	printf("}\n");
	fflush(stdout);
	tm_migration_free(m);
	if (lfd >= 0)
		close(lfd);
	teardown(&v);
	return rc || !report_clean(&r) ? 1 : 0;
}

/* Start `self ARGS...` with its stdout on a pipe; returns the pid. */
static pid_t spawn(const struct opts *o, char *const argv[], int *out_fd)
{
	int p[2];
	pid_t pid;

	(void)o;
	if (pipe(p))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* The child's one line of JSON (empty on failure) and its exit status. */
static int reap(pid_t pid, int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t k;
	int status = 0;

	while (n + 1 < len && (k = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	close(fd);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void child_args(const struct opts *o, char *ram, char *ch, char *seed,
		       const char *cmd, const char *arg, size_t ram_size,
		       char *argv[16])
{
	snprintf(ram, 32, "%zu", ram_size);
	snprintf(ch, 16, "%u", o->channels);
	snprintf(seed, 32, "%" PRIu64, o->seed);
	argv[0] = (char *)o->self;
	argv[1] = "--ram";
	argv[2] = ram;
	argv[3] = "--channels";
	argv[4] = ch;
	argv[5] = "--guest";
	argv[6] = (char *)o->guest;
	argv[7] = (char *)cmd;
	argv[8] = (char *)arg;
	argv[9] = NULL;
	(void)seed;
}

struct src_result {
	int rc;
	tm_migrate_stats st;
	tm_error err;
	struct tmv_report before, after;   /* source guest: before; after a failure */
	char dest[4096];
	int dest_rc;
};

/* Source side of one migration to a child started with dest_ram. */
static void migrate_once(const struct opts *o, size_t dest_ram, struct src_result *res)
{
	struct vmm v = { 0 };
	tm_migration *m = NULL;
	char addr[128], ram[32], ch[16], seed[32], *argv[16];
	int fds[TM_MIGRATE_MAX_CHANNELS + 1], out = -1, nfd = (int)o->channels + 1;
	pid_t pid;
	bool fds_open = false;
	int rc;

	memset(res, 0, sizeof(*res));
	tm_error_clear(&res->err);
	snprintf(addr, sizeof(addr), "unix:/tmp/tm-vmm-%d.sock", (int)getpid());
	rc = boot(&v, o, true, o->ram, v.msg, sizeof(v.msg));
	if (rc)
		tm_error_set(&res->err, rc, "%s", v.msg);
	if (!rc)
		rc = make_regions(&v, &res->err);
	if (!rc && (rc = run_and_verify(&v, o->warmup, &res->before)))
		tm_error_set(&res->err, rc, "source guest: %s", v.vm.exit_reason);
	if (!rc)
		rc = new_migration(&v, TM_MIGRATE_SOURCE, o, &m, &res->err);
	child_args(o, ram, ch, seed, "incoming", addr, dest_ram, argv);
	pid = rc ? -1 : spawn(o, argv, &out);
	if (!rc && pid < 0)
		rc = tm_error_set(&res->err, -errno, "cannot start the destination");
	if (!rc)
		rc = tm_migrate_connect(addr, (unsigned)nfd, fds, 30000, &res->err);
	fds_open = rc == 0;
	for (int i = 0; !rc && i < nfd; i++)
		rc = tm_migration_add_fd(m, fds[i], &res->err);
	if (!rc)
		rc = tm_migration_run(m, &res->st, &res->err);
	res->rc = rc;
	/* after a failure the source guest must still be running and intact */
	if (rc && v.ram)
		run_and_verify(&v, o->warmup / 4 + 1, &res->after);
	if (pid > 0)
		res->dest_rc = reap(pid, out, res->dest, sizeof(res->dest));
	tm_migration_free(m);
	for (int i = 0; fds_open && i < nfd; i++)
		close(fds[i]);
	teardown(&v);
}

static uint64_t pages_of(const tm_migrate_stats *st)
{
	return st->pages_normal + st->pages_tag_only + st->pages_zero;
}

static int cmd_migrate_demo(const struct opts *o)
{
	struct src_result r;
	bool ok;

	migrate_once(o, o->ram, &r);
	/* the guest verified on the destination, tagmem's digests matched,
	 * and tags did travel (a migration without tag bytes moved none) */
	ok = r.rc == 0 && r.dest_rc == 0 && strstr(r.dest, "\"verified\":true") &&
	     r.st.verified && r.st.bytes_tags > 0 && pages_of(&r.st) > 0;
	printf("{\"step\":\"migrate\",\"verified\":%s,\"downtime_ms\":%" PRIu64
	       ",\"total_ms\":%" PRIu64 ",\"pages\":%" PRIu64 ",\"tag_bytes_wire\":%"
	       PRIu64 ",\"bytes_wire\":%" PRIu64 ",\"iterations\":%u,\"channels\":%u"
	       ",\"pages_tag_only\":%" PRIu64 ",\"source_before\":",
	       ok ? "true" : "false", r.st.downtime_ms, r.st.total_ms, pages_of(&r.st),
	       r.st.bytes_tags, r.st.bytes_wire, r.st.iterations, o->channels,
	       r.st.pages_tag_only);
	print_report(stdout, &r.before);
	printf(",\"dest\":%s,\"error\":", r.dest[0] ? r.dest : "null");
	json_str(stdout, r.rc ? tm_error_msg(&r.err) : "");
	printf("}\n");
	return ok ? 0 : 1;
}

/* ---- snapshots ----------------------------------------------------------- */

static int cmd_restore(const struct opts *o, const char *path)
{
	struct vmm v = { 0 };
	tm_snapshot *s = NULL;
	tm_snap_stats st = { 0 };
	struct tmv_report r = { 0 };
	tm_region *dst[2];
	tm_error e;
	uint64_t t0 = now_ms();
	int rc;

	tm_error_clear(&e);
	rc = boot(&v, o, false, o->ram, v.msg, sizeof(v.msg));
	if (rc)
		tm_error_set(&e, rc, "%s", v.msg);
	if (!rc)
		rc = make_regions(&v, &e);
	if (!rc)
		rc = tm_snapshot_open(path, NULL, &s, &e);
	dst[0] = v.ram;
	dst[1] = v.vcpu;
	if (!rc)
		rc = tm_snapshot_restore(s, dst, 2, NULL, &st, &e);
	if (!rc)
		rc = tm_snapshot_check_digests(s, dst, 2, &e);
	if (!rc)
		rc = restore_state_and_start(&v, &e);
	if (!rc) {
		tvm_set_cmd(&v.vm, TMV_CMD_VERIFY);
		rc = tvm_wait_report(&v.vm, 0, 300000, &r);
		if (rc)
			tm_error_set(&e, rc, "guest verification: %s", v.vm.exit_reason);
	}
	printf("{\"role\":\"restore\",\"verified\":%s,\"restore_ms\":%" PRIu64
	       ",\"report\":", !rc && report_clean(&r) ? "true" : "false", now_ms() - t0);
	print_report(stdout, &r);
	printf(",\"error\":");
	json_str(stdout, rc ? tm_error_msg(&e) : "");
	printf("}\n");
	fflush(stdout);
	tm_snapshot_close(s);
	teardown(&v);
	return rc || !report_clean(&r) ? 1 : 0;
}

static int cmd_snapshot_demo(const struct opts *o, const char *path)
{
	struct vmm v = { 0 };
	struct tmv_report before = { 0 };
	tm_snap_opts so;
	tm_snap_stats st = { 0 };
	tm_region *src[2];
	char ram[32], ch[16], seed[32], *argv[16], child[4096] = "";
	tm_error e;
	uint64_t t0 = now_ms(), t_pause = 0, t_saved = 0;
	int rc, out = -1, crc = 1;
	pid_t pid = -1;
	bool ok;

	tm_error_clear(&e);
	tm_snap_opts_init(&so);
	so.flags = TM_SNAP_DIGEST;
	rc = boot(&v, o, true, o->ram, v.msg, sizeof(v.msg));
	if (rc)
		tm_error_set(&e, rc, "%s", v.msg);
	if (!rc)
		rc = make_regions(&v, &e);
	if (!rc && (rc = run_and_verify(&v, o->warmup, &before)))
		tm_error_set(&e, rc, "source guest: %s", v.vm.exit_reason);
	if (!rc && (rc = tvm_wait_progress(&v.vm, tvm_progress(&v.vm) + 2 * o->warmup / 8, 120000)))
		tm_error_set(&e, rc, "source guest: %s", v.vm.exit_reason);
	t_pause = now_ms();
	if (!rc && (rc = tvm_pause(&v.vm)))
		tm_error_set(&e, rc, "pausing the guest");
	if (!rc)
		rc = capture_state(&v, &e);
	src[0] = v.ram;
	src[1] = v.vcpu;
	if (!rc)
		rc = tm_snapshot_save(path, src, 2, &so, &st, &e);
	t_saved = now_ms();
	teardown(&v);
	child_args(o, ram, ch, seed, "restore", path, o->ram, argv);
	if (!rc)
		pid = spawn(o, argv, &out);
	if (pid > 0)
		crc = reap(pid, out, child, sizeof(child));
	ok = rc == 0 && crc == 0 && strstr(child, "\"verified\":true") &&
	     st.tagged_pages > 0;
	printf("{\"step\":\"snapshot\",\"verified\":%s,\"downtime_ms\":%" PRIu64
	       ",\"total_ms\":%" PRIu64 ",\"pages\":%" PRIu64 ",\"tag_bytes_wire\":%"
	       PRIu64 ",\"file_bytes\":%" PRIu64 ",\"tagged_pages\":%" PRIu64
	       ",\"tag_only_pages\":%" PRIu64 ",\"source_before\":",
	       ok ? "true" : "false", rc ? 0 : t_saved - t_pause, now_ms() - t0,
	       st.pages, st.tag_bytes, st.file_bytes, st.tagged_pages, st.tag_only_pages);
	print_report(stdout, &before);
	printf(",\"restore\":%s,\"error\":", child[0] ? child : "null");
	json_str(stdout, rc ? tm_error_msg(&e) : "");
	printf("}\n");
	return ok ? 0 : 1;
}

/* ---- bad input ------------------------------------------------------------ */

static void print_refusal(const char *step, int rc, const tm_error *e,
			  const char *must_name, bool kept, bool nothing_sent)
{
	bool named = strstr(tm_error_msg(e), must_name) != NULL;

	printf("{\"step\":\"%s\",\"refused\":%s,\"names\":", step,
	       rc ? "true" : "false");
	json_str(stdout, must_name);
	printf(",\"named\":%s,\"guest_kept_running\":%s,\"nothing_sent\":%s,\"error\":",
	       named ? "true" : "false", kept ? "true" : "false",
	       nothing_sent ? "true" : "false");
	json_str(stdout, tm_error_msg(e));
	printf("}\n");
}

/* A memslot the guest does not use, on a ramfs file (cannot hold tags),
 * registered before KVM_CAP_ARM_MTE was enabled (KVM accepts that order). */
static bool refuse_not_capable(const struct opts *o)
{
	char dir[] = "/tmp/tm-vmm-ramfs-XXXXXX", file[64];
	struct vmm v = { 0 };
	struct tvm_config c;
	struct tmv_report r;
	tm_region *bad = NULL;
	tm_error e;
	int rc, vrc = -1;

	tm_error_clear(&e);
	if (!mkdtemp(dir) || mount("none", dir, "ramfs", 0, NULL)) {
		tm_error_set(&e, -errno, "cannot mount ramfs: %s", strerror(errno));
		print_refusal("refuse-not-mte-capable", 0, &e, "slot 1", false, false);
		return false;
	}
	snprintf(file, sizeof(file), "%s/bank1", dir);
	tvm_config_default(&c);
	c.ram_size = o->ram;
	c.mte_after_slot = true;
	c.extra_size = 1u << 20;
	c.extra_mem = TVM_MEM_FILE;
	c.extra_path = file;
	rc = tvm_create(&v.vm, &c, v.msg, sizeof(v.msg));
	if (!rc)
		rc = tvm_load_guest(&v.vm, o->guest, v.msg, sizeof(v.msg));
	if (!rc)
		rc = tvm_start(&v.vm, false, v.msg, sizeof(v.msg));
	if (rc) {
		tm_error_set(&e, rc, "setting up the VM: %s", v.msg);
	} else {
		tm_kvm_slot s = { .vm_fd = v.vm.vm_fd, .slot = 1,
				  .guest_phys_addr = TVM_EXTRA_IPA,
				  .memory_size = c.extra_size, .userspace_addr = v.vm.extra };

		rc = tm_kvm_region_create(NULL, &s, NULL, &bad, &e);
		vrc = run_and_verify(&v, o->warmup / 4 + 1, &r);
	}
	print_refusal("refuse-not-mte-capable", rc, &e, "slot 1 at IPA 0x80000000",
		      vrc == 0 && report_clean(&r), bad == NULL);
	tm_region_destroy(bad);
	tvm_destroy(&v.vm);
	umount(dir);
	rmdir(dir);
	return rc != 0 && vrc == 0 && report_clean(&r) &&
	       strstr(tm_error_msg(&e), "slot 1 at IPA 0x80000000");
}

static bool refuse_no_mte(const struct opts *o)
{
	struct vmm v = { 0 };
	struct tvm_config c;
	struct tmv_report r;
	tm_region *ram = NULL;
	tm_error e;
	int rc, vrc = -1;

	tm_error_clear(&e);
	tvm_config_default(&c);
	c.ram_size = o->ram;
	c.mte = false;
	rc = tvm_create(&v.vm, &c, v.msg, sizeof(v.msg));
	if (!rc)
		rc = tvm_load_guest(&v.vm, o->guest, v.msg, sizeof(v.msg));
	if (!rc)
		rc = tvm_start(&v.vm, false, v.msg, sizeof(v.msg));
	if (rc) {
		tm_error_set(&e, rc, "setting up the VM: %s", v.msg);
	} else {
		tm_kvm_slot s = { .vm_fd = v.vm.vm_fd, .slot = 0,
				  .guest_phys_addr = TMV_RAM_IPA,
				  .memory_size = c.ram_size, .userspace_addr = v.vm.ram };

		rc = tm_kvm_region_create(NULL, &s, NULL, &ram, &e);
		vrc = run_and_verify(&v, o->warmup / 4 + 1, &r);
	}
	print_refusal("refuse-no-mte", rc, &e, "slot 0 at IPA 0x40000000",
		      vrc == 0 && report_clean(&r), ram == NULL);
	tm_region_destroy(ram);
	tvm_destroy(&v.vm);
	return rc != 0 && vrc == 0 && report_clean(&r) && r.mte_level < 2 &&
	       strstr(tm_error_msg(&e), "slot 0 at IPA 0x40000000");
}

static bool refuse_layout(const struct opts *o)
{
	struct src_result r;
	bool nothing, kept;

	migrate_once(o, o->ram * 2, &r);
	nothing = r.st.packets == 0 && pages_of(&r.st) == 0;
	kept = report_clean(&r.after) && r.after.ops > r.before.ops;
	print_refusal("refuse-layout", r.rc, &r.err, "slot0@0x40000000", kept, nothing);
	return r.rc != 0 && nothing && kept &&
	       strstr(tm_error_msg(&r.err), "slot0@0x40000000");
}

static int cmd_refuse_demo(const struct opts *o)
{
	bool a = refuse_not_capable(o), b = refuse_no_mte(o), c = refuse_layout(o);

	return a && b && c ? 0 : 1;
}

/* ---- main --------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: tm-vmm [--ram SIZE_BYTES] [--channels N] [--seed N] "
		"[--warmup OPS] [--downtime MS] [--guest ELF] COMMAND [ARG]\n"
		"commands: migrate-demo | incoming ADDR | snapshot-demo FILE | "
		"restore FILE | refuse-demo\n");
}

static void default_guest(struct opts *o)
{
	ssize_t n = readlink("/proc/self/exe", o->self, sizeof(o->self) - 1);
	static char g[PATH_MAX + 16];
	char *slash;

	o->self[n > 0 ? n : 0] = 0;
	snprintf(g, sizeof(g), "%s", o->self);
	slash = strrchr(g, '/');
	if (slash)
		snprintf(slash + 1, sizeof(g) - (size_t)(slash + 1 - g), "tm-guest.elf");
	o->guest = g;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ram", required_argument, NULL, 'r' },
		{ "channels", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "downtime", required_argument, NULL, 'd' },
		{ "guest", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .ram = 16u << 20, .channels = 2, .seed = 1, .warmup = 20000,
			  .downtime_ms = 300 };
	const char *cmd, *arg;
	int ch;

	default_guest(&o);
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'r': o.ram = strtoull(optarg, NULL, 0); break;
		case 'c': o.channels = (unsigned)strtoul(optarg, NULL, 0); break;
		case 's': o.seed = strtoull(optarg, NULL, 0); break;
		case 'w': o.warmup = strtoull(optarg, NULL, 0); break;
		case 'd': o.downtime_ms = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'g': o.guest = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (o.channels < 1 || o.channels > TM_MIGRATE_MAX_CHANNELS) {
		fprintf(stderr, "tm-vmm: --channels must be 1..%u\n", TM_MIGRATE_MAX_CHANNELS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cmd = argv[optind];
	if (access("/dev/kvm", R_OK | W_OK)) {
		/* make check-vm lists what its guest must have: a skip there
		 * would hide a broken rig */
		const char *req = getenv("TAGMEM_REQUIRE");

		printf("%s: no /dev/kvm here (run it in the VM: make demo-kvm)\n",
		       req && strstr(req, "kvm") ? "FAIL" : "SKIP");
		return req && strstr(req, "kvm") ? 1 : 77;
	}
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (!strcmp(cmd, "migrate-demo"))
		return cmd_migrate_demo(&o);
	if (!strcmp(cmd, "refuse-demo"))
		return cmd_refuse_demo(&o);
	if (arg && !strcmp(cmd, "incoming"))
		return cmd_incoming(&o, arg);
	if (arg && !strcmp(cmd, "snapshot-demo"))
		return cmd_snapshot_demo(&o, arg);
	if (arg && !strcmp(cmd, "restore"))
		return cmd_restore(&o, arg);
	usage(stderr);
	return 2;
}
