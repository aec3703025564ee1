#!/usr/bin/python3
# Helper of bench/queue_flood.sh and tests/integration/t_queue_flood.sh (issue 9.5); runs as
# an unprivileged test uid.
#
#   queue_flood.py flood HOLD_FDS INFLIGHT FIRST_PORT LAST_PORT SECONDS
#       Hold HOLD_FDS descriptors (/dev/null), then keep INFLIGHT non-blocking connects to
#       127.0.0.1 ports FIRST..LAST (nobody listens) in flight from the lowest descriptor
#       numbers, for SECONDS. Prints "attempts=N".
#   queue_flood.py learn FIRST_PORT N
#       Listen on N ports, then connect once to each (the daemon learns each receiver).
#       Prints "learned=K of N in S s".
#   queue_flood.py victim FIRST_PORT N TIMEOUT_S
#       N times: listen on a new port, time the first connection to it (the daemon decides
#       it), close. Prints one JSON line: {"ok": K, "failed": F, "ms": [latencies]}.
import errno, json, os, select, socket, sys, time


def flood(hold, inflight, first, last, seconds):
    # Reserve the low descriptors for the sockets, then fill the table behind them: a
    # process search walks past every one of them before it finds a socket.
    low = [os.open("/dev/null", os.O_RDONLY) for _ in range(inflight)]
    held = [os.open("/dev/null", os.O_RDONLY) for _ in range(hold)]
    for fd in low:
        os.close(fd)
    ep = select.epoll()
    socks = {}
    port = first
    attempts = 0

    def start():
        nonlocal port, attempts
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            return
        port = first if port >= last else port + 1
        attempts += 1
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLERR)

    end = time.monotonic() + seconds
    for _ in range(inflight):
        start()
    while time.monotonic() < end:
        for fd, _ in ep.poll(0.05):
            s = socks.pop(fd)
            ep.unregister(fd)
            s.close()
            start()
        # Drops (a full queue) never answer: give up on them after a second, as a client would.
    print("attempts=%d held=%d" % (attempts, len(held)), flush=True)


def victim(first, n, timeout):
    ms, failed = [], 0
    for k in range(n):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", first + k))
        ls.listen(4)
        t0 = time.monotonic()
        try:
            socket.create_connection(("127.0.0.1", first + k), timeout=timeout).close()
            ms.append((time.monotonic() - t0) * 1000)
        except OSError:
            failed += 1
        ls.close()
        time.sleep(0.01)
    print(json.dumps({"ok": len(ms), "failed": failed, "ms": [round(x, 3) for x in ms]}), flush=True)


def learn(first, n):
    ls = []
    for k in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", first + k))
        s.listen(2)
        ls.append(s)
    t0, ok = time.monotonic(), 0
    for k in range(n):
        try:
            socket.create_connection(("127.0.0.1", first + k), timeout=5).close()
            ok += 1
        except OSError:
            pass
        if k % 64 == 63:  # the backlogs fill up otherwise: take what was accepted
            for s in ls[k - 63:k + 1]:
                s.setblocking(False)
                try:
                    s.accept()[0].close()
                except OSError:
                    pass
    print("learned=%d of %d in %.3f s" % (ok, n, time.monotonic() - t0), flush=True)
    time.sleep(float(os.environ.get("HOLD_S", "0")))


if sys.argv[1] == "flood":
    flood(*[int(a) for a in sys.argv[2:7]])
elif sys.argv[1] == "learn":
    learn(int(sys.argv[2]), int(sys.argv[3]))
elif sys.argv[1] == "victim":
    victim(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
else:
    sys.exit("usage: queue_flood.py flood|victim ...")
