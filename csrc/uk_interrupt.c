/* SIGINT during a long call (uk_runtime.h).
 *
 * Python runs its signal handlers only between bytecodes, so a Ctrl-C that
 * arrives while the main thread is inside uk_matmul_run would wait for the
 * whole call.  While a long call runs, this file's handler sits in front of
 * the one it replaced (CPython's C-level handler): it sets a flag the
 * dispatch checks between workgroups and K blocks, then forwards the signal
 * to the previous handler so the interpreter still records it and raises
 * KeyboardInterrupt (or runs the user's handler) as soon as the call returns.
 *
 * This is runtime state, not ukernel state: the ukernels themselves stay free
 * of globals.  Arming/disarming is done by the thread that handles Python's
 * signals (the main thread), so the depth counter needs no lock. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "uk_runtime.h"

static volatile int32_t uk_sigint_flag;
static struct sigaction uk_sigint_prev;
static int uk_sigint_depth;

static void uk_sigint_handler(int sig, siginfo_t* info, void* uctx) {
  uk_sigint_flag = 1;
  if (uk_sigint_prev.sa_flags & SA_SIGINFO) {
    if (uk_sigint_prev.sa_sigaction) uk_sigint_prev.sa_sigaction(sig, info, uctx);
  } else if (uk_sigint_prev.sa_handler != SIG_DFL && uk_sigint_prev.sa_handler != SIG_IGN &&
             uk_sigint_prev.sa_handler != NULL) {
    uk_sigint_prev.sa_handler(sig);
  }
}

int uk_interrupt_arm(void) {
  if (uk_sigint_depth++ > 0) return 0;
  uk_sigint_flag = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = uk_sigint_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, &uk_sigint_prev) != 0) {
    uk_sigint_depth = 0;
    return -1;
  }
  return 0;
}

void uk_interrupt_disarm(void) {
  if (uk_sigint_depth <= 0) return;
  if (--uk_sigint_depth > 0) return;
  sigaction(SIGINT, &uk_sigint_prev, NULL);
}

const volatile int32_t* uk_interrupt_flag(void) { return &uk_sigint_flag; }
