#include "socket_options.h"

#include <cerrno>

#if defined(__unix__) || defined(__APPLE__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

namespace dsv4 {

int set_notsent_lowat(int fd, int bytes) {
#if (defined(__unix__) || defined(__APPLE__)) && defined(TCP_NOTSENT_LOWAT)
  if (setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes) != 0) return errno;
  return 0;
#else
  (void)fd;
  (void)bytes;
  return ENOPROTOOPT;
#endif
}

int set_receive_buffer(int fd, int bytes) {
#if defined(__unix__) || defined(__APPLE__)
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) return errno;
  return 0;
#else
  (void)fd;
  (void)bytes;
  return ENOPROTOOPT;
#endif
}

}  // namespace dsv4
