/*
 * cmds.h - the subcommands of the tagmem CLI. Each part of tagmem owns one
 * tools/cmd_<part>.c (and its benchmark in bench/<part>/); the dispatcher in
 * tagmem.c only routes. Every command takes (argc, argv) with argv[0] being
 * the subcommand's own name, handles its own --help, and returns the exit
 * status: 0 success, 1 failure of the operation, 2 usage error.
 */
#ifndef TM_TOOLS_CMDS_H
#define TM_TOOLS_CMDS_H

/* tags core: cmd_tags.c */
int tm_cmd_corpus(int argc, char **argv);
int tm_cmd_tags(int argc, char **argv);

/* migration: cmd_migrate.c */
int tm_cmd_migrate(int argc, char **argv);
int tm_cmd_demo(int argc, char **argv);

/* swap: cmd_swap.c */
int tm_cmd_swap(int argc, char **argv);

/* snapshots and core dumps: cmd_snapshot.c */
int tm_cmd_snapshot(int argc, char **argv);
int tm_cmd_core(int argc, char **argv);

/* tag-storage model: cmd_storage.c */
int tm_cmd_storage_sim(int argc, char **argv);

/* benchmarks: bench/<part>/bench_<part>.c */
int tm_bench_tags(int argc, char **argv);
int tm_bench_migrate(int argc, char **argv);
int tm_bench_swap(int argc, char **argv);
int tm_bench_snapshot(int argc, char **argv);
int tm_bench_storage(int argc, char **argv);

#endif
