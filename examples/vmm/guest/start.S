/*
 * start.S - entry of the bare-metal guest payload, at EL1 with the MMU off
 * (what KVM_ARM_VCPU_INIT leaves: EL1h, DAIF masked). Turns on the MMU with
 * an identity map whose RAM is Normal Tagged (MAIR attribute 0xF0), enables
 * allocation-tag access and synchronous tag checks at EL1 (SCTLR_EL1.ATA,
 * TCF = 1), seeds the tag generator, and calls guest_main(x0, x1, x2).
 *
 * Exceptions (a tag check fault included) land in one handler that reports
 * ESR/FAR/ELR to the VMM through the control device and stops.
 */
#include "proto.h"

/* Block descriptors for the 4 KiB-granule level-1 table (1 GiB blocks). */
#define BLK_VALID   0x1
#define BLK_AF      (1 << 10)
#define BLK_SH_IS   (3 << 8)
#define BLK_ATTR(n) ((n) << 2)
#define BLK_PXN     (1 << 53)
#define BLK_UXN     (1 << 54)

#define MAIR_VALUE  0xFF00F0            /* attr0 Normal Tagged, attr1 Device-nGnRnE, attr2 Normal */
#define MAIR_NOMTE  0xFF00FF            /* attr0 Normal: 0xF0 is reserved without MTE */
#define TCR_VALUE   (25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | \
		     (2 << 30) | (2 << 32) | (1 << 37))
		    /* T0SZ 25 (39-bit VA, start at level 1), inner/outer WBWA,
		       inner shareable, 4K TG0, EPD1, TG1 4K, IPS 40 bits, TBI0 */
#define SCTLR_RES1  ((1 << 11) | (1 << 20) | (1 << 22) | (1 << 23) | (1 << 28) | (1 << 29))
#define SCTLR_VALUE (SCTLR_RES1 | 1 | (1 << 2) | (1 << 12) | (1 << 43) | (1 << 40))
		    /* M, C, I, ATA, TCF = 1 (synchronous tag check faults) */

	.section .text.boot, "ax"
	.global _start
_start:
	mov	x19, x0
	mov	x20, x1
	mov	x21, x2
	ldr	x9, =__stack_top
	mov	sp, x9
	adr	x9, vectors
	msr	vbar_el1, x9
	/* A VM without KVM_CAP_ARM_MTE hides MTE (ID_AA64PFR1_EL1.MTE < 2):
	 * then RAM is plain Normal memory and no tag register is touched. */
	mrs	x22, id_aa64pfr1_el1
	ubfx	x22, x22, #8, #4
	ldr	x9, =MAIR_NOMTE
	cmp	x22, #2
	b.lo	5f
	ldr	x9, =MAIR_VALUE
5:	msr	mair_el1, x9
	ldr	x9, =TCR_VALUE
	msr	tcr_el1, x9
	adr	x9, pt_l1
	msr	ttbr0_el1, x9
	ldr	x10, =(SCTLR_RES1 | 1 | (1 << 2) | (1 << 12))
	cmp	x22, #2
	b.lo	6f
	/* Tag generation: exclude tag 0 so IRG always gives a non-zero tag;
	 * RRND = 0 uses RGSR_EL1, seeded from the boot argument. */
	mov	x9, #1
	msr	gcr_el1, x9
	and	x9, x20, #0xffff
	orr	x9, x9, #1
	lsl	x9, x9, #8
	msr	rgsr_el1, x9
	msr	tfsr_el1, xzr
	ldr	x10, =SCTLR_VALUE
6:	isb
	tlbi	vmalle1
	dsb	nsh
	msr	sctlr_el1, x10
	isb
	/* zero .bss with the MMU on (cacheable) */
	ldr	x9, =__bss_start
	ldr	x10, =__bss_end
1:	cmp	x9, x10
	b.hs	2f
	stp	xzr, xzr, [x9], #16
	b	1b
2:	mov	x0, x19
	mov	x1, x20
	mov	x2, x21
	bl	guest_main
3:	wfi
	b	3b
	.ltorg

/* Every vector: save the vector offset in x0 and report. */
	.macro	vent off
	.balign	128
	mov	x0, #\off
	b	on_exception
	.endm

	.balign	2048
vectors:
	vent	0x000
	vent	0x080
	vent	0x100
	vent	0x180
	vent	0x200
	vent	0x280
	vent	0x300
	vent	0x380
	vent	0x400
	vent	0x480
	vent	0x500
	vent	0x580
	vent	0x600
	vent	0x680
	vent	0x700
	vent	0x780

on_exception:
	msr	tco, #1                 /* the report itself must not fault */
	adr	x1, fault_rec
	mrs	x2, esr_el1
	mrs	x3, far_el1
	mrs	x4, elr_el1
	mrs	x5, spsr_el1
	stp	x2, x3, [x1]
	stp	x4, x5, [x1, #16]
	str	x0, [x1, #32]
	ldr	x6, =(TMV_MMIO_IPA + TMV_REG_FAULT)
	str	x1, [x6]
4:	wfi
	b	4b

	.section .data
	.balign	4096
pt_l1:
	.quad	0x00000000 | BLK_VALID | BLK_AF | BLK_ATTR(1) | BLK_PXN | BLK_UXN
	.quad	0x40000000 | BLK_VALID | BLK_AF | BLK_SH_IS | BLK_ATTR(0)
	.fill	510, 8, 0
	.balign	64
fault_rec:
	.fill	5, 8, 0
