"""The network guard: while a run replays, nothing leaves the machine.

In this process it wraps every way Python code reaches the network: the socket calls that pick a peer
(``connect``, ``connect_ex``, ``sendto``, ``sendmsg``) on ``socket.socket`` and on the C-level
``_socket.socket``, for every address family, and the resolver functions of both modules
(``getaddrinfo``, ``gethostbyname``, ``gethostbyname_ex``, ``gethostbyaddr``, ``getnameinfo``). Loopback
peers pass. Loopback *names* (``localhost``, ``*.localhost``, this machine's own host name) are answered
here, never resolved: glibc sends ``x.localhost`` to DNS.

Child processes inherit :meth:`ChildGuard.environment`: proxy variables pointed at a loopback port that
is bound but never listens (programs that honour them get "connection refused" at once), and a
``sitecustomize`` directory on ``PYTHONPATH`` that installs this same guard in any child Python, which
reports what it refused back through a log file.

This module imports nothing from the plugin but :mod:`.errors`, so a child Python loads both by path.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .errors import LookupBlockedError, NetworkBlockedError

CHILD_MODULE = "_llmport_child_guard"


def uninstall_child() -> None:
    """Remove the guard a generated ``sitecustomize`` installed: a pytest process runs its own.

    Called on import, before this module keeps references to the real socket functions, so an xdist
    worker (a child of a replaying controller) starts from the unpatched socket module.
    """
    child = sys.modules.get(CHILD_MODULE)
    guard = getattr(child, "_child_guard", None)
    if guard is not None:
        guard.uninstall()


uninstall_child()

LOG_ENV = "LLMPORT_GUARD_LOG"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
# Loopback only: a user's NO_PROXY may name public hosts, which would then bypass the closed proxy.
NO_PROXY = "localhost,127.0.0.1,::1"
# Families whose peers are inside this machine's kernel.
_LOCAL_FAMILIES = frozenset(
    getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK") if hasattr(socket, name)
)
_IP_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})


class Attempt:
    """One refused try to reach a peer: what was called, for whom, from which thread.

    A plain class, not a dataclass: it is made only when the guard refuses, and a dataclass is built
    when this module is imported, which every run does (bench/startup.py).
    """

    __slots__ = ("call", "host", "target", "thread", "via_proxy")

    def __init__(
        self, call: str, target: str, host: str, thread: threading.Thread, via_proxy: bool = False
    ) -> None:
        self.call = call  # "connect", "sendto", "getaddrinfo" ...
        self.target = target  # "192.0.2.1:9", "example.com", "AF_PACKET ('eth0', 3)"
        self.host = host
        self.thread = thread
        self.via_proxy = via_proxy  # a connection to the closed proxy the child environment points at

    def __repr__(self) -> str:
        return f"Attempt({self.call!r}, {self.target!r}, {self.host!r}, {self.thread!r}, {self.via_proxy!r})"

    @property
    def is_lookup(self) -> bool:
        return self.call.startswith(("get",))

    def describe(self) -> str:
        if self.via_proxy:
            return (
                f"a request for a non-loopback host through the proxy variables the guard set "
                f"(HTTPS_PROXY=http://{self.target})"
            )
        if self.is_lookup:
            return f"a name lookup of {self.target} ({self.call})"
        if self.call in ("connect", "connect_ex"):
            return f"a connection to {self.target}"
        return f"a packet to {self.target} ({self.call})"


# -- what counts as loopback --------------------------------------------------------------------
def host_text(host: Any) -> str | None:
    """The host of an address as text; bytes hosts are what the C socket module also accepts."""
    if isinstance(host, str):
        return host
    if isinstance(host, (bytes, bytearray)):
        return bytes(host).decode("latin-1")
    return None


def is_loopback_name(name: str) -> bool:
    """``localhost``, ``*.localhost`` (RFC 6761) and this machine's own host name."""
    name = name.strip().rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost") or name == _own_hostname()


def _own_hostname() -> str:
    try:
        return socket.gethostname().lower()
    except OSError:  # pragma: no cover - gethostname does not fail on supported systems
        return "localhost"


def is_local_ip(text: str) -> bool:
    """A literal address that never leaves the machine: loopback, or unspecified (``0.0.0.0``, ``::``)."""
    if text == "":
        return True  # INADDR_ANY
    try:
        # ipaddress reads an IPv6 scope ("::1%lo") itself; "127.0.0.1%x" is no address, and the C
        # socket module would send it to the resolver, so it must not count as loopback.
        address = ipaddress.ip_address(text)
    except ValueError:
        return False  # a name, or a legacy form such as "127.1": refused rather than parsed by guesswork
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _numeric_loopback(family: int) -> str:
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


# -- the patched calls ------------------------------------------------------------------------------
_STACK: list[Guard] = []  # installed guards, innermost last (pytester runs pytest inside pytest)
_SAVED: list[tuple[Any, str, Any]] = []
_REAL_SOCKET: type = _socket.socket


def _top() -> Guard | None:
    guard = _STACK[-1] if _STACK else None
    return guard if guard is not None and guard.blocking() else None


def _peer(guard: Guard, call: str, family: int, address: Any) -> Any:
    """Check one peer address; return the address to use (loopback names made numeric)."""
    if family in _LOCAL_FAMILIES:
        return address
    if family not in _IP_FAMILIES:
        name = getattr(family, "name", str(family))
        guard.refuse(call, f"{name} {address!r}", name, lookup=False)
    if not isinstance(address, tuple) or not address:
        return address  # the C call raises its own TypeError
    text = host_text(address[0])
    if text is None:
        return address
    port = address[1] if len(address) > 1 else None
    if is_local_ip(text):
        if guard.proxy_port is not None and port == guard.proxy_port:
            guard.refuse(call, f"127.0.0.1:{port}", "", lookup=False, via_proxy=True)
        return address
    if is_loopback_name(text):
        return (_numeric_loopback(family), *address[1:])
    guard.refuse(call, f"{text}:{port}", text, lookup=False)
    return address  # pragma: no cover - refuse raises


def _socket_methods(base: type) -> dict[str, Callable[..., Any]]:
    real_connect, real_connect_ex = base.connect, base.connect_ex  # type: ignore[attr-defined]
    real_sendto, real_sendmsg = base.sendto, base.sendmsg  # type: ignore[attr-defined]

    def connect(self: Any, address: Any) -> None:
        guard = _top()
        if guard is not None:
            address = _peer(guard, "connect", self.family, address)
        return real_connect(self, address)  # type: ignore[no-any-return]

    def connect_ex(self: Any, address: Any) -> int:
        guard = _top()
        if guard is not None:
            address = _peer(guard, "connect_ex", self.family, address)
        return real_connect_ex(self, address)  # type: ignore[no-any-return]

    def sendto(self: Any, *args: Any) -> int:
        guard = _top()
        if guard is not None and len(args) >= 2:
            args = (*args[:-1], _peer(guard, "sendto", self.family, args[-1]))
        return real_sendto(self, *args)  # type: ignore[no-any-return]

    def sendmsg(self: Any, *args: Any) -> int:
        guard = _top()
        if guard is not None and len(args) >= 4 and args[3] is not None:
            args = (*args[:3], _peer(guard, "sendmsg", self.family, args[3]), *args[4:])
        return real_sendmsg(self, *args)  # type: ignore[no-any-return]

    return {"connect": connect, "connect_ex": connect_ex, "sendto": sendto, "sendmsg": sendmsg}


class _SameType(type):
    """``isinstance(sock, _socket.socket)`` keeps its meaning while ``_socket.socket`` is the guarded type."""

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, _REAL_SOCKET)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _REAL_SOCKET)


# Code that calls the C type directly (``_socket.socket(...)``, ``socket.SocketType.connect(s, a)``) gets
# this subclass while a guard is installed; its methods pass through when no guard blocks.
_GuardedCSocket = _SameType("socket", (_REAL_SOCKET,), {"__slots__": (), **_socket_methods(_REAL_SOCKET)})


def _lookup_host(guard: Guard, call: str, host: Any) -> str | None:
    """None: resolve as asked; a string: answer with this numeric loopback address instead."""
    if host is None:
        return None
    text = host_text(host)
    if text is None:
        return None
    if is_local_ip(text):
        return None
    if is_loopback_name(text):
        return "127.0.0.1"
    guard.refuse(call, text, text, lookup=True)
    return None  # pragma: no cover - refuse raises


def _getaddrinfo(real: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        guard = _top()
        if guard is None:
            return real(host, port, family, type, proto, flags)
        text = host_text(host)
        if text is not None and not is_local_ip(text) and _is_ip(text):
            # A literal address: the first step of connecting to it (create_connection, every client).
            guard.refuse("connect", f"{text}:{port}", text, lookup=True)
        if _lookup_host(guard, "getaddrinfo", host) is None:
            return real(host, port, family, type, proto, flags)
        numeric = flags | socket.AI_NUMERICHOST
        answers = []
        for address, fam in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
            if family in (0, fam):
                with contextlib.suppress(OSError):  # no IPv6 on this machine
                    answers.extend(real(address, port, fam, type, proto, numeric))
        return answers

    return getaddrinfo


def _resolvers(real: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Guarded versions of one module's resolver functions, wrapping what they were at install time."""

    def gethostbyname(name: Any) -> str:
        guard = _top()
        if guard is not None and _lookup_host(guard, "gethostbyname", name) is not None:
            return "127.0.0.1"
        return real["gethostbyname"](name)  # type: ignore[no-any-return]

    def gethostbyname_ex(name: Any) -> tuple[str, list[str], list[str]]:
        guard = _top()
        if guard is not None and _lookup_host(guard, "gethostbyname_ex", name) is not None:
            return (str(host_text(name)), [], ["127.0.0.1"])
        return real["gethostbyname_ex"](name)  # type: ignore[no-any-return]

    def gethostbyaddr(address: Any) -> tuple[str, list[str], list[str]]:
        guard = _top()
        if guard is not None:
            text = host_text(address) or ""
            if is_local_ip(text):  # a reverse lookup of loopback may still ask DNS
                return ("localhost", [], [text or "127.0.0.1"])
            if _lookup_host(guard, "gethostbyaddr", address) is not None:
                return (text, [], ["127.0.0.1"])
        return real["gethostbyaddr"](address)  # type: ignore[no-any-return]

    def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
        guard = _top()
        if (
            guard is not None
            and isinstance(sockaddr, tuple)
            and sockaddr
            and not flags & socket.NI_NUMERICHOST
        ):
            text = host_text(sockaddr[0]) or ""
            if is_local_ip(text):
                return ("localhost", real["getnameinfo"](sockaddr, flags | socket.NI_NUMERICHOST)[1])
            guard.refuse("getnameinfo", text, text, lookup=True)
        return real["getnameinfo"](sockaddr, flags)  # type: ignore[no-any-return]

    return {
        "getaddrinfo": _getaddrinfo(real["getaddrinfo"]),
        "gethostbyname": gethostbyname,
        "gethostbyname_ex": gethostbyname_ex,
        "gethostbyaddr": gethostbyaddr,
        "getnameinfo": getnameinfo,
    }


_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


def _child_environment(env: Any) -> Any:
    """An ``env=`` given to a child: with this process's guard variables added, or the child escapes.

    Only the guard's own variables (its ``sitecustomize`` folder first on ``PYTHONPATH``, its log, and
    the closed proxy when this process has it); everything else is the caller's.
    """
    log = os.environ.get(LOG_ENV)
    if env is None or not log or _top() is None or not all(isinstance(k, str) for k in env):
        return env
    merged = dict(env)
    ours = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and _is_guard_dir(p)]
    theirs = [p for p in str(env.get("PYTHONPATH", "")).split(os.pathsep) if p and not _is_guard_dir(p)]
    merged["PYTHONPATH"] = os.pathsep.join([*ours, *theirs])
    merged[LOG_ENV] = log
    proxy = os.environ.get("HTTPS_PROXY", "")
    guard = _STACK[-1]
    if guard.proxy_port is not None and proxy == f"http://127.0.0.1:{guard.proxy_port}":
        merged.update({name: proxy for name in PROXY_VARS})
        merged.update({name: NO_PROXY for name in NO_PROXY_VARS})
    return merged


def _popen_init(real: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        at = _POPEN_ENV_INDEX
        if len(args) > at:
            args = (*args[:at], _child_environment(args[at]), *args[at + 1 :])
        elif "env" in kwargs:
            kwargs["env"] = _child_environment(kwargs["env"])
        real(self, *args, **kwargs)

    return __init__


# Popen(args, bufsize, executable, stdin, stdout, stderr, preexec_fn, close_fds, shell, cwd, env, ...)
_POPEN_ENV_INDEX = 10


def _patch_targets() -> list[tuple[Any, str, Any]]:
    import subprocess  # here, not at import: importing the plugin loads nothing a marked test needs

    methods = _socket_methods(socket.socket)
    targets: list[tuple[Any, str, Any]] = [(socket.socket, name, f) for name, f in methods.items()]
    targets.append((subprocess.Popen, "__init__", _popen_init(subprocess.Popen.__init__)))
    for module in (socket, _socket):
        wrapped = _resolvers({name: getattr(module, name) for name in _RESOLVERS})
        targets += [(module, name, wrapped[name]) for name in _RESOLVERS]
    targets += [
        (_socket, "socket", _GuardedCSocket),
        (_socket, "SocketType", _GuardedCSocket),
        (socket, "SocketType", _GuardedCSocket),
    ]
    return targets


_MISSING = object()


def _patch() -> None:
    for owner, name, replacement in _patch_targets():
        # socket.socket inherits connect & co. from the C type: restoring means deleting our override.
        _SAVED.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, replacement)


def _unpatch() -> None:
    while _SAVED:
        owner, name, original = _SAVED.pop()
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


# -- the guard ---------------------------------------------------------------------------------------
class Guard:
    """Refuses peers that are not loopback whenever ``blocking()`` says so.

    ``on_refusal`` turns an :class:`Attempt` into the message of the error raised in the caller (and may
    note it for the test); the error is an ``OSError`` (``ConnectionRefusedError``, or ``socket.gaierror``
    for lookups) so every HTTP client turns it into its own connection error and the app's ``except``
    clauses run.
    """

    def __init__(
        self, on_refusal: Callable[[Attempt], str], blocking: Callable[[], bool] = lambda: True
    ) -> None:
        self.on_refusal = on_refusal
        self.blocking = blocking
        self.proxy_port: int | None = None

    @property
    def installed(self) -> bool:
        return self in _STACK

    def install(self) -> None:
        if self in _STACK:
            return
        if not _STACK:
            _patch()
        _STACK.append(self)

    def uninstall(self) -> None:
        if self not in _STACK:
            return
        _STACK.remove(self)
        if not _STACK:
            _unpatch()

    def refuse(self, call: str, target: str, host: str, *, lookup: bool, via_proxy: bool = False) -> None:
        attempt = Attempt(call, target, host, threading.current_thread(), via_proxy)
        message = self.on_refusal(attempt)
        if lookup:
            raise LookupBlockedError(socket.EAI_NONAME, message)
        raise NetworkBlockedError(errno.ECONNREFUSED, message)


# -- whose request is it ----------------------------------------------------------------------------
_POOL_TARGET_MODULES = ("concurrent.futures.thread", "multiprocessing.pool")


def _is_pool_worker(thread: threading.Thread) -> bool:
    # A worker of a pool made before the test runs whatever the test submits to it: the test's own work.
    target = getattr(thread, "_target", None)
    if getattr(target, "__module__", None) in _POOL_TARGET_MODULES:
        return True
    return type(thread).__name__ == "WorkerThread" and type(thread).__module__.startswith("anyio")


class Threads:
    """The threads running when a test started: requests from them are not the test's."""

    def __init__(self) -> None:
        self.test_thread = threading.current_thread()
        self._before = {id(t): t for t in threading.enumerate() if t is not self.test_thread}

    def is_background(self, thread: threading.Thread | None = None) -> bool:
        thread = thread or threading.current_thread()
        return self._before.get(id(thread)) is thread and not _is_pool_worker(thread)


def background_hint(url: str) -> str:
    if "model_prices_and_context_window" in url:
        return (
            "litellm refreshes its cost map from a thread started at import; set "
            "LITELLM_LOCAL_MODEL_COST_MAP=True to use the bundled copy"
        )
    return (
        "sent from a thread that was running before the test started (a library's refresher or "
        "telemetry): not this test's request, so it is not recorded and gets a connection error while "
        "replaying; if it is the test's own, start that thread (or build its client) inside the test"
    )


# -- child processes --------------------------------------------------------------------------------
_SITECUSTOMIZE = '''\
"""Written by pytest-llmport: installs its network guard in this child Python, then the next sitecustomize."""
try:
    import importlib.util, sys, types
    _package = types.ModuleType("{package}")
    _package.__path__ = [{folder!r}]
    sys.modules["{package}"] = _package
    _spec = importlib.util.spec_from_file_location("{package}.guard", {guard!r})
    _guard = importlib.util.module_from_spec(_spec)
    sys.modules["{package}.guard"] = _guard
    _spec.loader.exec_module(_guard)
    sys.modules["{child}"] = _guard
    _guard.install_in_child()
except Exception as _error:  # a child must still run; say that it runs unguarded
    import sys
    sys.stderr.write("pytest-llmport: could not guard this child process: %r\\n" % (_error,))
import importlib.machinery as _machinery, importlib.util, os as _os, sys as _sys
_here = _os.path.dirname(_os.path.abspath(__file__))
_rest = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
_next = _machinery.PathFinder.find_spec("sitecustomize", _rest)
if _next is not None and _next.loader is not None:
    _module = importlib.util.module_from_spec(_next)
    _sys.modules["sitecustomize"] = _module
    _next.loader.exec_module(_module)
'''


_GUARD_DIR_PREFIX = "llmport-guard-"


def _is_guard_dir(path: str) -> bool:
    return Path(path).name.startswith(_GUARD_DIR_PREFIX)


class ChildGuard:
    """The environment that guards child processes, and what their guards refused."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix=_GUARD_DIR_PREFIX))
        self.log = self._dir / "refused.jsonl"
        self.log.touch()
        self._offset = 0
        # Checked after every test phase: fstat of a descriptor kept open costs half a stat of the path.
        self._log_fd = os.open(self.log, os.O_RDONLY)
        package = Path(__file__).resolve().parent
        (self._dir / "sitecustomize.py").write_text(
            _SITECUSTOMIZE.format(
                package="_llmport_child",
                folder=str(package),
                guard=str(package / "guard.py"),
                child=CHILD_MODULE,
            ),
            encoding="utf-8",
        )
        # Bound and never listening: a connection to it is refused at once, and no one else can take it.
        self._closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._closed.bind(("127.0.0.1", 0))
        self.proxy_port: int = self._closed.getsockname()[1]

    def environment(self, environ: Mapping[str, str], proxies: bool) -> dict[str, str]:
        """The variables to set: the child Python guard always, the closed proxy when ``proxies``."""
        # A parent's guard directory goes: one guard per child, reporting to this run.
        kept = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and not _is_guard_dir(p)]
        values = {"PYTHONPATH": os.pathsep.join([str(self._dir), *kept]), LOG_ENV: str(self.log)}
        if proxies:
            proxy = f"http://127.0.0.1:{self.proxy_port}"
            values.update({name: proxy for name in PROXY_VARS})
            values.update({name: NO_PROXY for name in NO_PROXY_VARS})
        return values

    def collect(self) -> list[dict[str, Any]]:
        """What child processes refused since the last call."""
        try:
            if self._log_fd < 0 or os.fstat(self._log_fd).st_size <= self._offset:  # the usual case
                return []
        except OSError:
            return []
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        entries = []
        for line in complete.splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def close(self) -> None:
        self._closed.close()
        if self._log_fd >= 0:
            fd, self._log_fd = self._log_fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
        # Not file by file: a child Python that writes bytecode (xdist workers do, unless
        # PYTHONDONTWRITEBYTECODE is set) leaves a __pycache__ folder beside the sitecustomize.
        shutil.rmtree(self._dir, ignore_errors=True)


def install_in_child() -> None:
    """Guard a child Python of a replaying run (called from the generated ``sitecustomize``)."""
    log = os.environ.get(LOG_ENV, "")
    command = " ".join(sys.argv) or sys.executable

    def on_refusal(attempt: Attempt) -> str:
        message = (
            f"pytest-llmport: blocked {attempt.describe()} in a child process (pid {os.getpid()}: "
            f"{command}) of a replaying test run. Use --llmport-allow-network to let it through."
        )
        if log:
            with contextlib.suppress(OSError), open(log, "a", encoding="utf-8") as handle:
                record = {"pid": os.getpid(), "command": command, "what": attempt.describe()}
                handle.write(json.dumps(record) + "\n")
        return message

    global _child_guard
    _child_guard = Guard(on_refusal)
    _child_guard.install()


_child_guard: Guard | None = None
