#include "socket_options.h"

#include <cerrno>

#if defined(__unix__) || defined(__APPLE__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#define DSV4_SOCKET_OPTIONS 1
#endif

namespace dsv4 {

namespace {
#ifdef DSV4_SOCKET_OPTIONS
// One integer socket option; 0 or setsockopt's errno.
int set_int_option(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) != 0 ? errno : 0;
}
#endif
}  // namespace

int set_notsent_lowat(int fd, int bytes) {
#if defined(DSV4_SOCKET_OPTIONS) && defined(TCP_NOTSENT_LOWAT)
  return set_int_option(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, bytes);
#else
  (void)fd;
  (void)bytes;
  return ENOPROTOOPT;
#endif
}

int set_receive_buffer(int fd, int bytes) {
#ifdef DSV4_SOCKET_OPTIONS
  return set_int_option(fd, SOL_SOCKET, SO_RCVBUF, bytes);
#else
  (void)fd;
  (void)bytes;
  return ENOPROTOOPT;
#endif
}

}  // namespace dsv4
