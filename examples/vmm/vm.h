/*
 * vm.h - the smallest KVM virtual machine that runs the guest payload
 * (guest/): one vcpu, one RAM memslot at TMV_RAM_IPA, KVM_CAP_ARM_MTE
 * enabled before the vcpu exists, and the control device of guest/proto.h
 * emulated in the vcpu thread. Used by the reference VMM (vmm.c) and by
 * the kvm tests (tests/kvm/).
 *
 * RAM is MAP_SHARED memory of a memfd (or MAP_SHARED anonymous), never
 * PROT_MTE in the VMM: the guest's tags live in the same pages and the VMM
 * reaches them only through KVM_ARM_MTE_COPY_TAGS (the kvm backend).
 *
 * Threads: tvm_start() starts the vcpu thread; every other call comes from
 * one controlling thread. tvm_pause() returns with the vcpu out of KVM_RUN
 * and no MMIO access half done, so its registers can be read or written.
 */
#ifndef TM_VMM_VM_H
#define TM_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/proto.h"

#define TVM_EXTRA_IPA 0x80000000ull

enum tvm_mem {
	TVM_MEM_MEMFD = 0,      /* memfd_create + MAP_SHARED (default) */
	TVM_MEM_SHARED_ANON,    /* MAP_SHARED | MAP_ANONYMOUS */
	TVM_MEM_FILE,           /* MAP_SHARED of a file (mem_path): not MTE-capable
				   unless it is on tmpfs */
};

struct tvm_config {
	size_t ram_size;        /* bytes, multiple of 64 KiB */
	bool mte;               /* KVM_ENABLE_CAP KVM_CAP_ARM_MTE */
	bool mte_after_slot;    /* enable MTE only after the memslot exists (to
				   build a VM whose slot is not MTE-capable) */
	enum tvm_mem mem;
	const char *mem_path;   /* TVM_MEM_FILE */
	/* Create the RAM memslot with KVM_MEM_LOG_DIRTY_PAGES. KVM refuses
	 * KVM_ARM_MTE_COPY_TAGS TO_GUEST (EBUSY) while any memslot of the VM
	 * logs dirty pages, so a VM that receives tags (migration destination,
	 * restore) runs without it; tvm_set_dirty_logging switches it later. */
	bool dirty_log;
	/* A second memslot (id 1 at TMV_EXTRA_IPA) the guest never touches,
	 * of extra_mem memory (extra_path for TVM_MEM_FILE); 0: none. */
	size_t extra_size;
	enum tvm_mem extra_mem;
	const char *extra_path;
	uint64_t seed;          /* guest PRNG */
	uint64_t poll;          /* guest operations between two polls */
};

void tvm_config_default(struct tvm_config *c);

struct tvm {
	struct tvm_config cfg;
	int kvm_fd, vm_fd, vcpu_fd, mem_fd;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *ram;           /* the VMM's mapping of guest RAM */
	uint8_t *extra;         /* the second slot's mapping, or NULL */
	int extra_fd;
	uint32_t slot;          /* memslot id of RAM */
	uint32_t slot_flags;    /* KVM_MEM_LOG_DIRTY_PAGES */
	bool manual_protect;    /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled */
	uint64_t entry;

	pthread_t thr;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	/* under lock */
	bool pause_req, paused, stop_req, exited;
	uint64_t cmd;           /* what TMV_REG_CMD reads */
	uint64_t progress;      /* last TMV_REG_PROGRESS */
	uint64_t polls;         /* TMV_REG_CMD reads */
	uint64_t reports;       /* TMV_REG_REPORT writes */
	bool ready;
	struct tmv_report report;   /* copy of the last report */
	bool faulted;
	struct tmv_fault fault;
	char exit_reason[160];  /* why the vcpu thread stopped, if it did */
};

/* Create the VM, RAM and vcpu; no guest loaded yet. Returns 0 or -errno
 * with a message in msg (len bytes). */
int tvm_create(struct tvm *vm, const struct tvm_config *cfg, char *msg,
	       size_t len);
/* Load the guest ELF (PT_LOAD segments inside RAM) and set the boot
 * registers: PC = entry, x0..x2 = RAM size, seed, poll. */
int tvm_load_guest(struct tvm *vm, const char *elf_path, char *msg,
		   size_t len);
/* Start the vcpu thread (running, or paused when start_paused). */
int tvm_start(struct tvm *vm, bool start_paused, char *msg, size_t len);
/* Take the vcpu out of KVM_RUN and hold it there. */
int tvm_pause(struct tvm *vm);
void tvm_resume(struct tvm *vm);
/* Stop the vcpu thread, close everything. */
void tvm_destroy(struct tvm *vm);

/* Turn KVM_MEM_LOG_DIRTY_PAGES on the RAM memslot on or off (the vcpu may
 * run). 0 or -errno. */
int tvm_set_dirty_logging(struct tvm *vm, bool on);

/* Set what the guest's next TMV_REG_CMD read returns. */
void tvm_set_cmd(struct tvm *vm, uint64_t cmd);
/* Wait until the guest wrote a report after `after` reports (or faulted,
 * or timeout_ms passed): 0, -EFAULT (guest fault), -ETIMEDOUT. */
int tvm_wait_report(struct tvm *vm, uint64_t after, unsigned timeout_ms,
		    struct tmv_report *out);
/* Wait until the guest reported progress >= ops. */
int tvm_wait_progress(struct tvm *vm, uint64_t ops, unsigned timeout_ms);
uint64_t tvm_reports(struct tvm *vm);
uint64_t tvm_progress(struct tvm *vm);

/*
 * vcpu state as a flat buffer: every register of KVM_GET_REG_LIST as
 * (u64 id, value of its size), preceded by a header; the VMM carries it in
 * a small extra region. tvm_state_size is the buffer size needed; save and
 * load need the vcpu paused (or never run).
 */
size_t tvm_state_size(struct tvm *vm);
int tvm_state_save(struct tvm *vm, uint8_t *buf, size_t len, char *msg,
		   size_t mlen);
int tvm_state_load(struct tvm *vm, const uint8_t *buf, size_t len, char *msg,
		   size_t mlen);

#endif
