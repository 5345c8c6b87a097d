// Error reporting across the C ABI: thread-local message + status code, never abort().
#pragma once

#include <exception>
#include <new>

#include "nativequant.h"

namespace nq {

// Record a printf-style message for nq_last_error_message() and return `status`.
nq_status fail(nq_status status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Run `body` (returning nq_status) and turn any escaping C++ exception into a status,
// so nothing unwinds across the C boundary.
template <class F>
nq_status guard(const char* function, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(NQ_ERR_OUT_OF_MEMORY, "%s: out of memory", function);
  } catch (const std::exception& e) {
    return fail(NQ_ERR_INTERNAL, "%s: internal error: %s", function, e.what());
  } catch (...) {
    return fail(NQ_ERR_INTERNAL, "%s: internal error", function);
  }
}

}  // namespace nq

// Argument checks for ABI entry points; `fn` is the public function name.
#define NQ_CHECK_NOT_NULL(fn, ptr)                                                    \
  do {                                                                                \
    if ((ptr) == nullptr)                                                             \
      return ::nq::fail(NQ_ERR_NULL_POINTER, "%s: argument '%s' must not be NULL", fn, \
                        #ptr);                                                        \
  } while (0)

#define NQ_CHECK(cond, status, ...)                 \
  do {                                              \
    if (!(cond)) return ::nq::fail(status, __VA_ARGS__); \
  } while (0)
