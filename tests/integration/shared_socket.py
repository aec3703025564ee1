"""Sockets shared with an allowed program, the ways an attacker would try it, for the
executables tests. Prints connected, refused or error ... for the connection that matters.

  shared_socket.py inherited ALLOWED_BIN PORT [nondumpable]
      This program (not allowed) makes a socket, shares it with ALLOWED_BIN (which holds it
      and waits), then a fork of this program connects it after the maker closed its copy:
      a scan that stopped at the first holder would see only the allowed program. With
      nondumpable, both python processes are made non-dumpable first (their /proc/PID files
      belong to root then).
  shared_socket.py thread-private ALLOWED_BIN PORT
      A thread of this program takes a file table of its own (unshare(CLONE_FILES)), makes
      the socket there, shares it with ALLOWED_BIN and connects it: this program's
      /proc/PID/fd (the leader's table) never shows the socket, only the thread's does.
  shared_socket.py exec-after PORT   (run by an allowed interpreter)
      A fork holds the socket; a connection from a fresh socket makes the daemon read the fork
      as the allowed file; then the fork exec()s /usr/bin/python3 (not allowed), keeping the
      socket, and this process connects it.
"""
import ctypes
import os
import socket
import subprocess
import sys
import threading
import time

CLONE_FILES = 0x400


def try_connect(s, port):
    s.settimeout(1.5)
    try:
        s.connect(("127.0.0.1", port))
        print("connected", flush=True)
    except ConnectionRefusedError:
        print("refused", flush=True)
    except OSError as e:
        print("error", e, flush=True)


def inherited(allowed, port, nondumpable):
    if nondumpable:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        assert os.stat("/proc/self/status").st_uid == 0
    s = socket.socket()
    s.set_inheritable(True)
    # The allowed program gets a copy first (lower pid), then a later process of the maker
    # connects.
    child = subprocess.Popen([allowed, "listen", "tcp", "127.0.0.1", "5999"],
                             pass_fds=[s.fileno()], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        try_connect(s, port)
        os._exit(0)
    s.close()
    os.write(w, b"x")
    os.waitpid(pid, 0)
    child.kill()


def thread_private(allowed, port):
    def run():
        if ctypes.CDLL(None, use_errno=True).unshare(CLONE_FILES) != 0:
            print("error unshare", ctypes.get_errno(), flush=True)
            return
        s = socket.socket()
        s.set_inheritable(True)
        child = subprocess.Popen([allowed, "listen", "tcp", "127.0.0.1", "5999"],
                                 pass_fds=[s.fileno()], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        for _ in range(100):  # until the allowed program runs, holding the socket
            if os.readlink("/proc/%d/exe" % child.pid) == os.path.realpath(allowed):
                break
            time.sleep(0.01)
        assert "socket:[%d]" % os.fstat(s.fileno()).st_ino not in \
            [os.readlink("/proc/%d/fd/%s" % (os.getpid(), f))
             for f in os.listdir("/proc/%d/fd" % os.getpid())]
        try_connect(s, port)
        child.kill()

    t = threading.Thread(target=run)
    t.start()
    t.join()


def exec_after(port):
    s = socket.socket()
    s.set_inheritable(True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os.execv("/usr/bin/python3", ["python3", "-c", "import time; time.sleep(5)"])
    os.close(r)
    t = socket.create_connection(("127.0.0.1", port), timeout=1.5)  # the fork is read now
    t.close()
    os.write(w, b"x")
    for _ in range(100):  # until the fork runs python3
        if os.readlink("/proc/%d/exe" % pid) != os.readlink("/proc/self/exe"):
            break
        time.sleep(0.01)
    try_connect(s, port)
    os.kill(pid, 9)


if sys.argv[1] == "inherited":
    inherited(sys.argv[2], int(sys.argv[3]), sys.argv[4:] == ["nondumpable"])
elif sys.argv[1] == "thread-private":
    thread_private(sys.argv[2], int(sys.argv[3]))
else:
    exec_after(int(sys.argv[2]))
