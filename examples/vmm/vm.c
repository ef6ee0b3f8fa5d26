/*
 * vm.c - a one-vcpu KVM VM for the guest payload: VM and memslot setup
 * with MTE, the ELF loader, the vcpu thread with its MMIO device, pause/
 * resume that never leaves an MMIO access half done, and the vcpu register
 * state as a flat buffer (for migration and snapshots).
 */
#include "vm.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAGIC 0x3130555043564d54ull  /* "TMVCPU01" */
#define KICK_SIGNAL SIGUSR1

static int fail(char *msg, size_t len, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (msg && len)
		vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return rc;
}

void tvm_config_default(struct tvm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->ram_size = 16u << 20;
	c->mte = true;
	c->mem = TVM_MEM_MEMFD;
	c->seed = 1;
	c->poll = 512;
}

/* ---- creation ------------------------------------------------------ */

static int map_mem(enum tvm_mem kind, const char *path, size_t sz, int *fd,
		   uint8_t **out, char *msg, size_t len)
{
	int flags = MAP_SHARED;
	void *p;

	*fd = -1;
	if (kind == TVM_MEM_MEMFD)
		*fd = memfd_create("tm-guest-ram", MFD_CLOEXEC);
	else if (kind == TVM_MEM_FILE)
		*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	else
		flags |= MAP_ANONYMOUS;
	if (kind != TVM_MEM_SHARED_ANON && (*fd < 0 || ftruncate(*fd, (off_t)sz)))
		return fail(msg, len, -errno, "guest RAM: %s: %s",
			    kind == TVM_MEM_FILE ? path : "memfd", strerror(errno));
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, flags, *fd, 0);
	if (p == MAP_FAILED)
		return fail(msg, len, -errno, "guest RAM: mmap of %zu bytes: %s", sz,
			    strerror(errno));
	*out = p;
	return 0;
}

static int map_ram(struct tvm *vm, char *msg, size_t len)
{
	int rc = map_mem(vm->cfg.mem, vm->cfg.mem_path, vm->cfg.ram_size,
			 &vm->mem_fd, &vm->ram, msg, len);

	if (!rc && vm->cfg.extra_size)
		rc = map_mem(vm->cfg.extra_mem, vm->cfg.extra_path,
			     vm->cfg.extra_size, &vm->extra_fd, &vm->extra, msg, len);
	return rc;
}

static int enable_cap(int fd, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap c;

	memset(&c, 0, sizeof(c));
	c.cap = cap;
	c.args[0] = arg0;
	return ioctl(fd, KVM_ENABLE_CAP, &c) ? -errno : 0;
}

static int enable_mte(struct tvm *vm, char *msg, size_t len)
{
	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_MTE) <= 0)
		return fail(msg, len, -ENOTSUP, "KVM on this host has no KVM_CAP_ARM_MTE");
	if (enable_cap(vm->vm_fd, KVM_CAP_ARM_MTE, 0))
		return fail(msg, len, -errno, "KVM_ENABLE_CAP KVM_CAP_ARM_MTE: %s",
			    strerror(errno));
	return 0;
}

/* Manual dirty-log protection (what QEMU uses): GET_DIRTY_LOG reports,
 * CLEAR_DIRTY_LOG re-arms; with INITIALLY_SET nothing is write-protected
 * until the first clear, so logging costs nothing before a migration. */
static void enable_manual_protect(struct tvm *vm)
{
	int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION,
			 KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;

	if (caps <= 0)
		return;
	want |= (uint64_t)caps & KVM_DIRTY_LOG_INITIALLY_SET;
	vm->manual_protect = enable_cap(vm->vm_fd,
					KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, want) == 0;
}

static int set_slot(struct tvm *vm, uint32_t flags)
{
	struct kvm_userspace_memory_region m;

	memset(&m, 0, sizeof(m));
	m.slot = vm->slot;
	m.flags = flags;
	m.guest_phys_addr = TMV_RAM_IPA;
	m.memory_size = vm->cfg.ram_size;
	m.userspace_addr = (uintptr_t)vm->ram;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m))
		return -errno;
	vm->slot_flags = flags;
	return 0;
}

static int add_slot(struct tvm *vm, char *msg, size_t len)
{
	int rc;

	vm->slot = 0;
	rc = set_slot(vm, vm->cfg.dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0);
	if (rc)
		return fail(msg, len, rc, "KVM_SET_USER_MEMORY_REGION slot 0 at "
			    "IPA %#llx (%zu bytes): %s", TMV_RAM_IPA,
			    vm->cfg.ram_size, strerror(-rc));
	return 0;
}

static int add_extra_slot(struct tvm *vm, char *msg, size_t len)
{
	struct kvm_userspace_memory_region m;

	if (!vm->cfg.extra_size)
		return 0;
	memset(&m, 0, sizeof(m));
	m.slot = 1;
	m.guest_phys_addr = TVM_EXTRA_IPA;
	m.memory_size = vm->cfg.extra_size;
	m.userspace_addr = (uintptr_t)vm->extra;
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &m))
		return fail(msg, len, -errno, "KVM_SET_USER_MEMORY_REGION slot 1 at "
			    "IPA %#llx (%zu bytes): %s", TVM_EXTRA_IPA,
			    vm->cfg.extra_size, strerror(errno));
	return 0;
}

int tvm_set_dirty_logging(struct tvm *vm, bool on)
{
	uint32_t f = on ? vm->slot_flags | KVM_MEM_LOG_DIRTY_PAGES
			: vm->slot_flags & ~(uint32_t)KVM_MEM_LOG_DIRTY_PAGES;

	return f == vm->slot_flags ? 0 : set_slot(vm, f);
}

static int create_vcpu(struct tvm *vm, char *msg, size_t len)
{
	struct kvm_vcpu_init init;
	int sz;

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0)
		return fail(msg, len, -errno, "KVM_CREATE_VCPU: %s", strerror(errno));
	memset(&init, 0, sizeof(init));
	if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &init))
		return fail(msg, len, -errno, "KVM_ARM_PREFERRED_TARGET: %s",
			    strerror(errno));
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(vm->vcpu_fd, KVM_ARM_VCPU_INIT, &init))
		return fail(msg, len, -errno, "KVM_ARM_VCPU_INIT: %s", strerror(errno));
	sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		return fail(msg, len, -EIO, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = (size_t)sz;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		return fail(msg, len, -errno, "mmap of kvm_run: %s", strerror(errno));
	}
	return 0;
}

static void vm_init_fields(struct tvm *vm, const struct tvm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = vm->mem_fd = vm->extra_fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cv, NULL);
}

int tvm_create(struct tvm *vm, const struct tvm_config *cfg, char *msg,
	       size_t len)
{
	int rc;

	vm_init_fields(vm, cfg);
	if (cfg->ram_size < (1u << 20) || cfg->ram_size % (64u << 10))
		return fail(msg, len, -EINVAL, "RAM size %zu is not a multiple of "
			    "64 KiB of at least 1 MiB", cfg->ram_size);
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return fail(msg, len, -errno, "/dev/kvm: %s", strerror(errno));
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return fail(msg, len, -errno, "KVM_CREATE_VM: %s", strerror(errno));
	rc = map_ram(vm, msg, len);
	if (!rc && cfg->mte && !cfg->mte_after_slot)
		rc = enable_mte(vm, msg, len);
	if (!rc)
		enable_manual_protect(vm);
	if (!rc)
		rc = add_slot(vm, msg, len);
	if (!rc)
		rc = add_extra_slot(vm, msg, len);
	if (!rc && cfg->mte && cfg->mte_after_slot)
		rc = enable_mte(vm, msg, len);
	if (!rc)
		rc = create_vcpu(vm, msg, len);
	return rc;
}

/* ---- guest loading -------------------------------------------------- */

static uint64_t core_reg(size_t off)
{
	return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
	       (off / sizeof(uint32_t));
}

static int set_reg(struct tvm *vm, uint64_t id, uint64_t v)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)&v };

	return ioctl(vm->vcpu_fd, KVM_SET_ONE_REG, &r) ? -errno : 0;
}

static int check_phdr(const struct tvm *vm, const Elf64_Phdr *ph, size_t fsize,
		      char *msg, size_t len)
{
	uint64_t end = TMV_RAM_IPA + vm->cfg.ram_size;

	if (ph->p_filesz > ph->p_memsz || ph->p_offset > fsize ||
	    ph->p_filesz > fsize - ph->p_offset)
		return fail(msg, len, -ENOEXEC, "guest ELF: segment at file offset "
			    "%#llx reaches past the file",
			    (unsigned long long)ph->p_offset);
	if (ph->p_paddr < TMV_RAM_IPA || ph->p_memsz > end - ph->p_paddr)
		return fail(msg, len, -ENOEXEC, "guest ELF: segment at IPA %#llx "
			    "(%#llx bytes) is outside RAM [%#llx, %#llx)",
			    (unsigned long long)ph->p_paddr,
			    (unsigned long long)ph->p_memsz, TMV_RAM_IPA,
			    (unsigned long long)end);
	return 0;
}

static int load_segments(struct tvm *vm, const uint8_t *f, size_t fsize,
			 char *msg, size_t len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;

	if (fsize < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_AARCH64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum > 64 ||
	    eh->e_phoff > fsize ||
	    (size_t)eh->e_phnum * sizeof(Elf64_Phdr) > fsize - eh->e_phoff)
		return fail(msg, len, -ENOEXEC, "guest image is not a 64-bit arm64 "
			    "ELF with a sane program header table");
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff) + i;
		uint8_t *dst;
		int rc;

		if (ph->p_type != PT_LOAD)
			continue;
		rc = check_phdr(vm, ph, fsize, msg, len);
		if (rc)
			return rc;
		dst = vm->ram + (ph->p_paddr - TMV_RAM_IPA);
		memcpy(dst, f + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	if (eh->e_entry < TMV_RAM_IPA || eh->e_entry >= TMV_RAM_IPA + vm->cfg.ram_size)
		return fail(msg, len, -ENOEXEC, "guest ELF entry %#llx is outside RAM",
			    (unsigned long long)eh->e_entry);
	vm->entry = eh->e_entry;
	return 0;
}

int tvm_load_guest(struct tvm *vm, const char *path, char *msg, size_t len)
{
	struct stat st;
	uint8_t *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0 || fstat(fd, &st))
		return fail(msg, len, -errno, "guest image %s: %s", path, strerror(errno));
	f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return fail(msg, len, -errno, "guest image %s: %s", path, strerror(errno));
	rc = load_segments(vm, f, (size_t)st.st_size, msg, len);
	munmap(f, (size_t)st.st_size);
	if (rc)
		return rc;
	rc = set_reg(vm, core_reg(offsetof(struct kvm_regs, regs.pc)), vm->entry);
	if (!rc)
		rc = set_reg(vm, core_reg(offsetof(struct kvm_regs, regs.regs[0])),
			     vm->cfg.ram_size);
	if (!rc)
		rc = set_reg(vm, core_reg(offsetof(struct kvm_regs, regs.regs[1])),
			     vm->cfg.seed);
	if (!rc)
		rc = set_reg(vm, core_reg(offsetof(struct kvm_regs, regs.regs[2])),
			     vm->cfg.poll);
	return rc ? fail(msg, len, rc, "KVM_SET_ONE_REG (boot registers): %s",
			 strerror(-rc)) : 0;
}

/* ---- the control device --------------------------------------------- */

/* Copy a guest structure out of RAM, bounds-checked. */
static bool copy_guest(struct tvm *vm, uint64_t ipa, void *out, size_t n)
{
	if (ipa < TMV_RAM_IPA || ipa - TMV_RAM_IPA > vm->cfg.ram_size ||
	    n > vm->cfg.ram_size - (ipa - TMV_RAM_IPA))
		return false;
	memcpy(out, vm->ram + (ipa - TMV_RAM_IPA), n);
	return true;
}

static void stop_with(struct tvm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void stop_with(struct tvm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->exit_reason, sizeof(vm->exit_reason), fmt, ap);
	va_end(ap);
	vm->exited = true;
}

static void mmio_write(struct tvm *vm, uint64_t reg, uint64_t v)
{
	switch (reg) {
	case TMV_REG_PROGRESS:
		vm->progress = v;
		break;
	case TMV_REG_REPORT:
	case TMV_REG_READY:
		if (!copy_guest(vm, v, &vm->report, sizeof(vm->report)) ||
		    vm->report.magic != TMV_REPORT_MAGIC) {
			stop_with(vm, "guest report at IPA %#llx is not valid",
				  (unsigned long long)v);
			break;
		}
		if (reg == TMV_REG_READY)
			vm->ready = true;
		else
			vm->reports++;
		break;
	case TMV_REG_FAULT:
		copy_guest(vm, v, &vm->fault, sizeof(vm->fault));
		vm->faulted = true;
		stop_with(vm, "guest exception: vector %#llx ESR %#llx FAR %#llx ELR %#llx",
			  (unsigned long long)vm->fault.vector,
			  (unsigned long long)vm->fault.esr,
			  (unsigned long long)vm->fault.far,
			  (unsigned long long)vm->fault.elr);
		break;
	case TMV_REG_PUTC:
		fputc((int)(v & 0xFF), stderr);
		break;
	default:
		stop_with(vm, "guest wrote unknown device register %#llx",
			  (unsigned long long)reg);
	}
}

static void handle_mmio(struct tvm *vm)
{
	struct kvm_run *run = vm->run;
	uint64_t reg = run->mmio.phys_addr - TMV_MMIO_IPA, v = 0;

	if (run->mmio.phys_addr < TMV_MMIO_IPA || reg >= 0x1000 || run->mmio.len != 8) {
		stop_with(vm, "guest MMIO of %u bytes at IPA %#llx: no device there",
			  run->mmio.len, (unsigned long long)run->mmio.phys_addr);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	if (run->mmio.is_write) {
		memcpy(&v, run->mmio.data, 8);
		mmio_write(vm, reg, v);
	} else if (reg == TMV_REG_CMD) {
		v = vm->cmd;
		if (v == TMV_CMD_VERIFY)
			vm->cmd = TMV_CMD_RUN;  /* one verification per request */
		else if ((v & 0xFF) == TMV_CMD_TAG_ONLY)
			vm->cmd = TMV_CMD_HALT; /* one tag write per request */
		vm->polls++;
		memcpy(run->mmio.data, &v, 8);
	} else {
		stop_with(vm, "guest read unknown device register %#llx",
			  (unsigned long long)reg);
	}
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->lock);
}

/* ---- the vcpu thread ------------------------------------------------ */

static void on_kick(int sig) { (void)sig; }

/* Finish an MMIO access KVM is waiting for without running the guest, so
 * the registers are consistent while the vcpu is parked. */
static void complete_pending(struct tvm *vm)
{
	if (vm->run->exit_reason != KVM_EXIT_MMIO)
		return;
	vm->run->immediate_exit = 1;
	ioctl(vm->vcpu_fd, KVM_RUN, 0);
	vm->run->exit_reason = KVM_EXIT_INTR;
}

/* Park while a pause is requested; false when the thread must end. */
static bool park(struct tvm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->pause_req && !vm->stop_req && !vm->exited) {
		pthread_mutex_unlock(&vm->lock);
		complete_pending(vm);
		pthread_mutex_lock(&vm->lock);
	}
	while (vm->pause_req && !vm->stop_req && !vm->exited) {
		vm->paused = true;
		pthread_cond_broadcast(&vm->cv);
		pthread_cond_wait(&vm->cv, &vm->lock);
	}
	vm->paused = false;
	vm->run->immediate_exit = 0;
	if (vm->stop_req || vm->exited) {
		pthread_mutex_unlock(&vm->lock);
		return false;
	}
	pthread_mutex_unlock(&vm->lock);
	return true;
}

static void one_exit(struct tvm *vm)
{
	struct kvm_run *run = vm->run;

	switch (run->exit_reason) {
	case KVM_EXIT_MMIO:
		handle_mmio(vm);
		break;
	case KVM_EXIT_INTR:
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		pthread_mutex_lock(&vm->lock);
		stop_with(vm, "guest system event %u", run->system_event.type);
		pthread_mutex_unlock(&vm->lock);
		break;
	default:
		pthread_mutex_lock(&vm->lock);
		stop_with(vm, "unexpected KVM exit reason %u", run->exit_reason);
		pthread_mutex_unlock(&vm->lock);
	}
}

static void *vcpu_main(void *arg)
{
	struct tvm *vm = arg;

	while (park(vm)) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vm->run->exit_reason = KVM_EXIT_INTR;
				continue;
			}
			pthread_mutex_lock(&vm->lock);
			stop_with(vm, "KVM_RUN: %s", strerror(errno));
			pthread_mutex_unlock(&vm->lock);
			break;
		}
		one_exit(vm);
	}
	pthread_mutex_lock(&vm->lock);
	vm->exited = true;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

int tvm_start(struct tvm *vm, bool start_paused, char *msg, size_t len)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;   /* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(KICK_SIGNAL, &sa, NULL);
	vm->pause_req = start_paused;
	vm->run->exit_reason = KVM_EXIT_INTR;
	if (pthread_create(&vm->thr, NULL, vcpu_main, vm))
		return fail(msg, len, -EAGAIN, "cannot start the vcpu thread");
	vm->started = true;
	return 0;
}

int tvm_pause(struct tvm *vm)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	vm->pause_req = true;
	vm->run->immediate_exit = 1;
	if (vm->started && !vm->exited)
		pthread_kill(vm->thr, KICK_SIGNAL);
	while (vm->started && !vm->paused && !vm->exited)
		pthread_cond_wait(&vm->cv, &vm->lock);
	if (vm->exited)
		rc = -ESRCH;
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

void tvm_resume(struct tvm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_req = false;
	pthread_cond_broadcast(&vm->cv);
	pthread_mutex_unlock(&vm->lock);
}

void tvm_set_cmd(struct tvm *vm, uint64_t cmd)
{
	pthread_mutex_lock(&vm->lock);
	vm->cmd = cmd;
	pthread_mutex_unlock(&vm->lock);
}

static void deadline(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int tvm_wait_report(struct tvm *vm, uint64_t after, unsigned timeout_ms,
		    struct tmv_report *out)
{
	struct timespec ts;
	int rc = 0;

	deadline(&ts, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (vm->reports <= after && !vm->exited && rc == 0)
		rc = pthread_cond_timedwait(&vm->cv, &vm->lock, &ts);
	if (vm->reports > after) {
		rc = 0;
		if (out)
			*out = vm->report;
	} else {
		rc = vm->exited ? -EFAULT : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

int tvm_wait_progress(struct tvm *vm, uint64_t ops, unsigned timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	deadline(&ts, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (vm->progress < ops && !vm->exited && rc == 0)
		rc = pthread_cond_timedwait(&vm->cv, &vm->lock, &ts);
	rc = vm->progress >= ops ? 0 : vm->exited ? -EFAULT : -ETIMEDOUT;
	pthread_mutex_unlock(&vm->lock);
	return rc;
}

uint64_t tvm_reports(struct tvm *vm)
{
	uint64_t v;

	pthread_mutex_lock(&vm->lock);
	v = vm->reports;
	pthread_mutex_unlock(&vm->lock);
	return v;
}

uint64_t tvm_progress(struct tvm *vm)
{
	uint64_t v;

	pthread_mutex_lock(&vm->lock);
	v = vm->progress;
	pthread_mutex_unlock(&vm->lock);
	return v;
}

void tvm_destroy(struct tvm *vm)
{
	if (vm->started) {
		pthread_mutex_lock(&vm->lock);
		vm->stop_req = true;
		vm->run->immediate_exit = 1;
		pthread_cond_broadcast(&vm->cv);
		if (!vm->exited)
			pthread_kill(vm->thr, KICK_SIGNAL);
		pthread_mutex_unlock(&vm->lock);
		pthread_join(vm->thr, NULL);
		vm->started = false;
	}
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->ram)
		munmap(vm->ram, vm->cfg.ram_size);
	if (vm->extra)
		munmap(vm->extra, vm->cfg.extra_size);
	for (int *fd = &vm->kvm_fd; fd <= &vm->mem_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	if (vm->extra_fd >= 0)
		close(vm->extra_fd);
	vm->run = NULL;
	vm->ram = vm->extra = NULL;
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = vm->mem_fd = vm->extra_fd = -1;
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cv);
}

/* ---- vcpu state ------------------------------------------------------ */

static size_t reg_size(uint64_t id)
{
	return (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

static struct kvm_reg_list *reg_list(struct tvm *vm)
{
	struct kvm_reg_list probe = { .n = 0 }, *l;

	if (ioctl(vm->vcpu_fd, KVM_GET_REG_LIST, &probe) == 0 || errno != E2BIG)
		return NULL;
	l = calloc(1, sizeof(*l) + probe.n * sizeof(uint64_t));
	if (!l)
		return NULL;
	l->n = probe.n;
	if (ioctl(vm->vcpu_fd, KVM_GET_REG_LIST, l)) {
		free(l);
		return NULL;
	}
	return l;
}

size_t tvm_state_size(struct tvm *vm)
{
	struct kvm_reg_list *l = reg_list(vm);
	size_t n = 16;

	for (uint64_t i = 0; l && i < l->n; i++)
		n += 8 + reg_size(l->reg[i]);
	free(l);
	return l ? n : 0;
}

int tvm_state_save(struct tvm *vm, uint8_t *buf, size_t len, char *msg,
		   size_t mlen)
{
	struct kvm_reg_list *l = reg_list(vm);
	uint64_t magic = STATE_MAGIC, n;
	size_t at = 16;

	if (!l)
		return fail(msg, mlen, -EIO, "KVM_GET_REG_LIST: %s", strerror(errno));
	n = l->n;
	memset(buf, 0, len);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = l->reg[i];
		struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)(buf + at + 8) };

		if (at + 8 + reg_size(id) > len || reg_size(id) > 256) {
			free(l);
			return fail(msg, mlen, -ENOSPC, "vcpu state: %llu registers do "
				    "not fit in %zu bytes", (unsigned long long)n, len);
		}
		memcpy(buf + at, &id, 8);
		if (ioctl(vm->vcpu_fd, KVM_GET_ONE_REG, &r)) {
			free(l);
			return fail(msg, mlen, -errno, "KVM_GET_ONE_REG %#llx: %s",
				    (unsigned long long)id, strerror(errno));
		}
		at += 8 + reg_size(id);
	}
	free(l);
	memcpy(buf, &magic, 8);
	memcpy(buf + 8, &n, 8);
	return 0;
}

/* Validate the whole buffer before the first register is written. */
static int state_check(const uint8_t *buf, size_t len, uint64_t *n, char *msg,
		       size_t mlen)
{
	uint64_t magic;
	size_t at = 16;

	if (len < 16)
		return fail(msg, mlen, -EBADMSG, "vcpu state: %zu bytes is too short", len);
	memcpy(&magic, buf, 8);
	memcpy(n, buf + 8, 8);
	if (magic != STATE_MAGIC || *n == 0 || *n > len / 8)
		return fail(msg, mlen, -EBADMSG, "vcpu state: bad magic or register "
			    "count at offset 0");
	for (uint64_t i = 0; i < *n; i++) {
		uint64_t id;

		if (at + 8 > len)
			return fail(msg, mlen, -EBADMSG, "vcpu state: register %llu "
				    "at offset %zu is truncated", (unsigned long long)i, at);
		memcpy(&id, buf + at, 8);
		if ((id & KVM_REG_ARCH_MASK) != KVM_REG_ARM64 || reg_size(id) > 256 ||
		    at + 8 + reg_size(id) > len)
			return fail(msg, mlen, -EBADMSG, "vcpu state: register id %#llx "
				    "at offset %zu is not a valid arm64 register",
				    (unsigned long long)id, at);
		at += 8 + reg_size(id);
	}
	return 0;
}

int tvm_state_load(struct tvm *vm, const uint8_t *buf, size_t len, char *msg,
		   size_t mlen)
{
	uint64_t n = 0;
	size_t at = 16;
	int rc = state_check(buf, len, &n, msg, mlen);

	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		uint64_t id;
		struct kvm_one_reg r;

		memcpy(&id, buf + at, 8);
		r.id = id;
		r.addr = (uintptr_t)(buf + at + 8);
		if (ioctl(vm->vcpu_fd, KVM_SET_ONE_REG, &r))
			rc = fail(msg, mlen, -errno, "KVM_SET_ONE_REG %#llx: %s",
				  (unsigned long long)id, strerror(errno));
		at += 8 + reg_size(id);
	}
	return rc;
}
