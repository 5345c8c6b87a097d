#include "core/error.h"

#include <cstdarg>
#include <cstdio>

namespace {
thread_local char t_last_error[1024] = "";
}

namespace nq {

nq_status fail(nq_status status, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(t_last_error, sizeof t_last_error, fmt, args);
  va_end(args);
  return status;
}

}  // namespace nq

extern "C" {

NQ_API const char* nq_last_error_message(void) { return t_last_error; }

NQ_API const char* nq_status_name(nq_status status) {
  switch (status) {
    case NQ_OK: return "NQ_OK";
    case NQ_ERR_INVALID_ARGUMENT: return "NQ_ERR_INVALID_ARGUMENT";
    case NQ_ERR_NULL_POINTER: return "NQ_ERR_NULL_POINTER";
    case NQ_ERR_SHAPE: return "NQ_ERR_SHAPE";
    case NQ_ERR_ALIGNMENT: return "NQ_ERR_ALIGNMENT";
    case NQ_ERR_UNSUPPORTED: return "NQ_ERR_UNSUPPORTED";
    case NQ_ERR_OUT_OF_MEMORY: return "NQ_ERR_OUT_OF_MEMORY";
    case NQ_ERR_IO: return "NQ_ERR_IO";
    case NQ_ERR_OVERLAP: return "NQ_ERR_OVERLAP";
    case NQ_ERR_NON_FINITE: return "NQ_ERR_NON_FINITE";
    case NQ_ERR_INTERNAL: return "NQ_ERR_INTERNAL";
  }
  return "NQ_ERR_UNKNOWN";
}

NQ_API nq_status nq_version_get(int32_t* major, int32_t* minor, int32_t* patch) {
  NQ_CHECK_NOT_NULL("nq_version_get", major);
  NQ_CHECK_NOT_NULL("nq_version_get", minor);
  NQ_CHECK_NOT_NULL("nq_version_get", patch);
  *major = NQ_VERSION_MAJOR;
  *minor = NQ_VERSION_MINOR;
  *patch = NQ_VERSION_PATCH;
  return NQ_OK;
}

}  // extern "C"
