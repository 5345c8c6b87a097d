// Pager internals shared with the paged optimizer steps (the ABI is in nativequant.h).
#pragma once

#include <cstdint>

#include "nativequant.h"

namespace nq::pager {

uint64_t budget_bytes(const nq_pager* pager);
uint64_t page_bytes(const nq_pager* pager);
// Size in bytes of a live buffer, or NQ_ERR_INVALID_ARGUMENT naming `arg` in `fn`'s message.
nq_status buffer_bytes(const char* fn, const char* arg, nq_pager* pager, int64_t buffer, uint64_t* out_bytes);

}  // namespace nq::pager
