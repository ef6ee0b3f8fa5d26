/*
 * tagmem/tagmem.h - the whole public API in one include, for callers that
 * do not want to pick headers one by one. Each header also stands alone.
 * tests/pkg/check_symbols.py fails when a public header is missing here.
 */
#ifndef TAGMEM_TAGMEM_H
#define TAGMEM_TAGMEM_H

#include "tagmem/api.h"
#include "tagmem/error.h"
#include "tagmem/tags.h"
#include "tagmem/region.h"
#include "tagmem/backend.h"
#include "tagmem/kvm.h"
#include "tagmem/ptrace.h"
#include "tagmem/migrate.h"
#include "tagmem/snapshot.h"
#include "tagmem/core.h"
#include "tagmem/swap.h"
#include "tagmem/storage_sim.h"

#endif
