/*
 * coffre_native: the one system call Node.js lacks for faithful restores.
 * utimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, nofollow) sets access and
 * modification times to the nanosecond with utimensat(2); fs.utimes takes a double
 * number of seconds and loses precision. `path` is a string or a Buffer (raw bytes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "coffre_native: invalid arguments");     \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value utimens(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "utimens needs 6 arguments");
    return NULL;
  }
  char *path = NULL;
  bool is_buffer = false;
  CHECK(napi_is_buffer(env, argv[0], &is_buffer));
  if (is_buffer) {
    void *data;
    size_t len;
    CHECK(napi_get_buffer_info(env, argv[0], &data, &len));
    path = malloc(len + 1);
    if (!path) return NULL;
    memcpy(path, data, len);
    path[len] = 0;
    if (strlen(path) != len) {
      free(path);
      napi_throw_type_error(env, NULL, "path contains a NUL byte");
      return NULL;
    }
  } else {
    size_t len;
    CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
    path = malloc(len + 1);
    if (!path) return NULL;
    CHECK(napi_get_value_string_utf8(env, argv[0], path, len + 1, &len));
  }
  double as, an, ms, mn;
  bool nofollow;
  if (napi_get_value_double(env, argv[1], &as) != napi_ok || napi_get_value_double(env, argv[2], &an) != napi_ok ||
      napi_get_value_double(env, argv[3], &ms) != napi_ok || napi_get_value_double(env, argv[4], &mn) != napi_ok ||
      napi_get_value_bool(env, argv[5], &nofollow) != napi_ok) {
    free(path);
    napi_throw_type_error(env, NULL, "utimens: bad time arguments");
    return NULL;
  }
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)as;
  ts[0].tv_nsec = (long)an;
  ts[1].tv_sec = (time_t)ms;
  ts[1].tv_nsec = (long)mn;
  int rc = utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
  int err = errno;
  free(path);
  if (rc != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "utimensat: %s", strerror(err));
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "utimens", NAPI_AUTO_LENGTH, utimens, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "utimens", fn) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
