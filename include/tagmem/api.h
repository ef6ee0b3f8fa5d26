/*
 * tagmem/api.h - what every public header shares: TM_API, the macro that
 * exports a function from libtagmem.so, and the library's version.
 *
 * Visibility
 *   The library is compiled with -fvisibility=hidden, so a function is
 *   exported from libtagmem.so only when its declaration in a public header
 *   (include/tagmem/) carries TM_API (zstd's ZSTDLIB_API). Everything else,
 *   the internal tm_* functions of src/ included, stays inside the library.
 *   A test (tests/pkg) fails when the exported set differs from the
 *   functions declared in the installed headers. Define TM_API yourself
 *   before the first include to override it (e.g. empty when you link the
 *   static library into a shared object of your own and want none of
 *   tagmem's symbols exported from it).
 *
 * Version
 *   TAGMEM_VERSION_MAJOR/MINOR/PATCH describe the headers you compiled
 *   against; tm_version_number()/tm_version_string() the library you run
 *   with (they differ when a program built against one libtagmem.so.0 runs
 *   with a newer one). TAGMEM_VERSION_NUMBER is MAJOR*10000 + MINOR*100 +
 *   PATCH, as ZSTD_VERSION_NUMBER. meson.build refuses to configure when
 *   these macros differ from the project version, so they cannot drift.
 *
 * Structs that grow
 *   The config structs a caller fills in and passes to the library
 *   (tm_region_config, tm_migrate_config, tm_migrate_hooks, tm_snap_opts,
 *   tm_core_opts, tm_swapfile_config, tm_pager_config, tm_ss_config) begin
 *   with `uint32_t struct_size`, the caller's sizeof of the struct. A later
 *   tagmem adds fields only at the end, and a field's zero always means the
 *   behaviour from before it existed. The library reads the struct through
 *   struct_size (the rule of Linux's perf_event_attr and clone3 args):
 *     0              the 0.1 layout: what a caller gets who zero-initialises
 *                    the struct and never sets struct_size;
 *     < sizeof       a caller built against older headers: the fields it
 *                    does not have read as zero;
 *     > sizeof       a caller built against newer headers: accepted when
 *                    every byte this library does not know is zero, else
 *                    -E2BIG naming the struct and the first such byte;
 *     < 0.1 layout, or > TM_STRUCT_SIZE_MAX: -EINVAL naming the struct.
 *   So write `tm_region_config c = { .struct_size = sizeof c, ... }`; the
 *   default fillers (tm_migrate_config_default, tm_snap_opts_init,
 *   tm_ss_config_default) are inline functions that pass the caller's
 *   sizeof and set struct_size. Structs the library fills (stats, info,
 *   results) and embedded or array structs (tm_geom, tm_error, tm_ss_costs,
 *   tm_core_region, tm_ss_event, tm_ss_workload) keep their layout within
 *   a soname. docs/ABI.md has the rule for adding a field.
 *
 * Thread safety: both functions are pure and may be called from any thread.
 */
#ifndef TAGMEM_API_H
#define TAGMEM_API_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TM_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define TM_API __attribute__((visibility("default")))
#else
#define TM_API
#endif
#endif

#define TAGMEM_VERSION_MAJOR 0
#define TAGMEM_VERSION_MINOR 1
#define TAGMEM_VERSION_PATCH 0
#define TAGMEM_VERSION_NUMBER (TAGMEM_VERSION_MAJOR * 10000 + \
			       TAGMEM_VERSION_MINOR * 100 + \
			       TAGMEM_VERSION_PATCH)

#define TM_VERSION_STR_(x) #x
#define TM_VERSION_STR(x) TM_VERSION_STR_(x)
/* "0.1.0" */
#define TAGMEM_VERSION_STRING TM_VERSION_STR(TAGMEM_VERSION_MAJOR) "." \
			      TM_VERSION_STR(TAGMEM_VERSION_MINOR) "." \
			      TM_VERSION_STR(TAGMEM_VERSION_PATCH)

/* No struct_size is larger (a guard against an uninitialised one). */
#define TM_STRUCT_SIZE_MAX 4096u

/* TAGMEM_VERSION_NUMBER of the library at run time. */
TM_API unsigned tm_version_number(void);
/* TAGMEM_VERSION_STRING of the library at run time ("0.1.0"). Never NULL. */
TM_API const char *tm_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
