/*
 * migration.c - the tm_migration object: configuration, regions and
 * descriptors handed in by the caller, cancellation, and the failure record
 * the channel threads share. The protocol itself is in source.c/dest.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/abi.h"
#include "common/util.h"
#include "migrate/internal.h"

static void config_default(tm_migrate_config *c)
{
	memset(c, 0, sizeof(*c));
	c->struct_size = sizeof(*c);
	c->channels = 2;
	c->compress = TM_COMPRESS_NONE;
	c->compress_level = 1;
	c->checksum = true;
	c->verify = true;
	c->pages_per_packet = TM_MIGRATE_DEFAULT_PPP;
	c->downtime_ms = 300;
	c->max_iterations = 30;
	c->on_max_iterations = TM_MAXITER_FAIL;
	c->timeout_ms = 30000;
	c->zero_copy = true;
}

int tm_migrate_config_default_sized(tm_migrate_config *c, size_t size)
{
	tm_migrate_config d;

	config_default(&d);
	return TM_ABI_COPY_OUT(tm_migrate_config, c, size, &d, NULL);
}

static int check_config(const tm_migrate_config *c, tm_error *err)
{
	if (c->channels < 1 || c->channels > TM_MIGRATE_MAX_CHANNELS)
		return tm_error_set(err, -EINVAL, "channels %u: must be 1..%u",
				    c->channels, TM_MIGRATE_MAX_CHANNELS);
	if (c->compress != TM_COMPRESS_NONE && c->compress != TM_COMPRESS_ZSTD)
		return tm_error_set(err, -EINVAL, "unknown compression %d",
				    (int)c->compress);
	if (c->compress == TM_COMPRESS_ZSTD &&
	    (c->compress_level < 1 || c->compress_level > 19))
		return tm_error_set(err, -EINVAL, "zstd level %d: must be 1..19",
				    c->compress_level);
	if (c->pages_per_packet < 64 || c->pages_per_packet > TM_MIGRATE_MAX_PPP ||
	    c->pages_per_packet % 64)
		return tm_error_set(err, -EINVAL,
			"pages per packet %u: must be a multiple of 64 in 64..%u",
			c->pages_per_packet, TM_MIGRATE_MAX_PPP);
	if (c->max_iterations < 1)
		return tm_error_set(err, -EINVAL, "max iterations must be >= 1");
	if (c->timeout_ms < 1)
		return tm_error_set(err, -EINVAL, "timeout must be >= 1 ms");
	return 0;
}

int tm_migration_new(tm_migration **out, enum tm_migrate_role role,
		     const tm_migrate_config *cfg, const tm_migrate_hooks *hooks,
		     tm_error *err)
{
	tm_migration *m;
	int rc;

	if (role != TM_MIGRATE_SOURCE && role != TM_MIGRATE_DEST)
		return tm_error_set(err, -EINVAL, "unknown role %d", (int)role);
	m = calloc(1, sizeof(*m));
	if (!m)
		return tm_error_set(err, -ENOMEM, "cannot allocate a migration");
	m->role = role;
	rc = 0;
	if (cfg)
		rc = TM_ABI_COPY_IN(tm_migrate_config, &m->cfg, cfg, err);
	else
		config_default(&m->cfg);
	if (!rc)
		rc = check_config(&m->cfg, err);
	if (!rc && hooks)
		rc = TM_ABI_COPY_IN(tm_migrate_hooks, &m->hooks, hooks, err);
	if (rc) {
		free(m);
		return rc;
	}
	m->lfd = -1;
	if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		free(m);
		return tm_error_set(err, rc, "pipe: %s", strerror(-rc));
	}
	pthread_mutex_init(&m->err_lock, NULL);
	*out = m;
	return 0;
}

void tm_migration_free(tm_migration *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->own_fd[i])
			close(m->fd[i]);
	close(m->wake[0]);
	close(m->wake[1]);
	pthread_mutex_destroy(&m->err_lock);
	free(m);
}

int tm_migration_add_region(tm_migration *m, tm_region *r, tm_error *err)
{
	if (m->nregions >= TM_MIGRATE_MAX_REGIONS)
		return tm_error_set(err, -E2BIG, "more than %u regions",
				    TM_MIGRATE_MAX_REGIONS);
	if (strlen(tm_region_name(r)) >= TM_NAME_LEN || !tm_region_name(r)[0])
		return tm_error_set(err, -EINVAL,
			"region name '%s' must be 1..%u bytes", tm_region_name(r),
			TM_NAME_LEN - 1);
	for (unsigned i = 0; i < m->nregions; i++)
		if (strcmp(tm_region_name(m->region[i]), tm_region_name(r)) == 0)
			return tm_error_set(err, -EEXIST, "region '%s' added twice",
					    tm_region_name(r));
	m->region[m->nregions++] = r;
	return 0;
}

int tm_migration_add_fd(tm_migration *m, int fd, tm_error *err)
{
	if (m->nfds > TM_MIGRATE_MAX_CHANNELS)
		return tm_error_set(err, -E2BIG, "more than %u descriptors",
				    TM_MIGRATE_MAX_CHANNELS + 1);
	if (fd < 0)
		return tm_error_set(err, -EBADF, "descriptor %d", fd);
	m->own_fd[m->nfds] = false;
	m->fd[m->nfds++] = fd;
	return 0;
}

int tm_migration_set_listener(tm_migration *m, int lfd, tm_error *err)
{
	if (m->role != TM_MIGRATE_DEST)
		return tm_error_set(err, -EINVAL, "only a destination listens");
	m->lfd = lfd;
	return 0;
}

void tm_migration_cancel(tm_migration *m)
{
	char c = 'c';
	ssize_t w;

	atomic_store(&m->cancelled, 1);
	w = write(m->wake[1], &c, 1);
	(void)w;  /* a full pipe already wakes the reader */
}

void tm_mig_wake(tm_migration *m)
{
	char c = 'w';
	ssize_t w = write(m->wake[1], &c, 1);

	(void)w;
}

void tm_mig_drain_wake(tm_migration *m)
{
	char buf[64];

	while (read(m->wake[0], buf, sizeof(buf)) > 0)
		;
}

void tm_mig_fail(tm_migration *m, const tm_error *e)
{
	pthread_mutex_lock(&m->err_lock);
	if (!atomic_load(&m->failed)) {
		m->first_err = *e;
		if (m->first_err.code == 0)
			m->first_err.code = -EIO;
		atomic_store(&m->failed, 1);
	}
	pthread_mutex_unlock(&m->err_lock);
	tm_mig_wake(m);
}

bool tm_mig_stopping(tm_migration *m)
{
	return atomic_load(&m->failed) || atomic_load(&m->cancelled);
}

void tm_mig_shutdown(tm_migration *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		shutdown(m->fd[i], SHUT_RDWR);
}

int tm_mig_error(tm_migration *m, tm_error *err)
{
	int code;

	pthread_mutex_lock(&m->err_lock);
	if (atomic_load(&m->failed)) {
		code = m->first_err.code;
		if (err)
			*err = m->first_err;
	} else {
		code = tm_error_set(err, -ECANCELED, "migration cancelled on the %s",
				    m->role == TM_MIGRATE_SOURCE ? "source" :
				    "destination");
	}
	pthread_mutex_unlock(&m->err_lock);
	return code;
}

void tm_mig_progress(tm_migration *m, bool force)
{
	uint64_t now = tm_now_ns();

	if (!m->hooks.progress || (!force && now - m->t_progress < 100000000u))
		return;
	m->t_progress = now;
	m->st.total_ms = (now - m->t0) / 1000000u;
	m->hooks.progress(m->hooks.ctx, &m->st);
}

int tm_migration_run(tm_migration *m, tm_migrate_stats *stats, tm_error *err)
{
	int rc;

	if (m->ran)
		return tm_error_set(err, -EALREADY, "a migration object runs once");
	m->ran = true;
	memset(&m->st, 0, sizeof(m->st));
	m->t0 = tm_now_ns();
	rc = m->role == TM_MIGRATE_SOURCE ? tm_source_run(m, err) :
					    tm_dest_run(m, err);
	m->st.total_ms = (tm_now_ns() - m->t0) / 1000000u;
	m->st.phase = rc ? TM_PHASE_FAILED : TM_PHASE_DONE;
	tm_mig_progress(m, true);
	if (stats)
		*stats = m->st;
	return rc;
}
