"""The program that runs inside the sandbox: a Python REPL serving one JSON request per line.

It is a string (``REPL_SOURCE``), run as ``python -I -c REPL_SOURCE`` after the sandbox bootstrap has
applied limits and namespaces, and imports only the standard library so it starts in milliseconds.
Kept apart from ``python_sandbox`` because none of it runs in our process.

Protocol (the pipes are moved to private descriptors first, so user code printing to fd 1 or reading
stdin cannot corrupt it): request ``{"code", "cpu_s", "output_chars"}``; reply ``{"stdout", "stderr",
"value", "error", "truncated", "limit"}``. Variables persist across requests in one globals dict. A
request's CPU budget is a soft ``RLIMIT_CPU`` set relative to the time already used, so an infinite loop
gets ``SIGXCPU``, turned into an exception: the cell fails, the session's state survives. The hard
limit (the session's whole budget) is the bootstrap's and cannot be raised from inside.
"""

from __future__ import annotations

__all__ = ["REPL_SOURCE"]

REPL_SOURCE = r"""
import ast, io, json, os, resource, signal, sys, traceback

proto_in = os.fdopen(os.dup(0), "rb")
proto_out = os.fdopen(os.dup(1), "wb")
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
nproc = int(sys.argv[1])
if nproc > 0:
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    except (ValueError, OSError):
        pass

in_child = False
def _mark_child():
    global in_child
    in_child = True
os.register_at_fork(after_in_child=_mark_child)

class CpuLimit(BaseException):
    pass

def _on_xcpu(signum, frame):
    raise CpuLimit()
signal.signal(signal.SIGXCPU, _on_xcpu)

class Capped(io.TextIOBase):
    def __init__(self, limit):
        self.parts, self.size, self.limit, self.truncated = [], 0, limit, False
    def writable(self):
        return True
    def write(self, text):
        room = self.limit - self.size
        if len(text) > room:
            self.truncated = True
            text = text[: max(room, 0)]
        self.parts.append(text)
        self.size += len(text)
        return len(text)
    def value(self):
        return "".join(self.parts)

namespace = {"__name__": "__main__", "__builtins__": __builtins__}

def used_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def run_cell(code, out):
    tree = ast.parse(code, "<cell>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        value = eval(compile(last, "<cell>", "eval"), namespace)
        if value is not None:
            return repr(value)
    return None

for line in proto_in:
    request = json.loads(line)
    out, err = Capped(request["output_chars"]), Capped(request["output_chars"])
    sys.stdout, sys.stderr = out, err
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used_cpu()) + int(request["cpu_s"]) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    reply = {"value": None, "error": None, "limit": None}
    try:
        reply["value"] = run_cell(request["code"], out)
    except CpuLimit:
        reply["error"], reply["limit"] = "the cell exceeded its CPU time limit", "cpu"
    except MemoryError:
        reply["error"], reply["limit"] = "MemoryError: the cell exceeded the memory limit", "memory"
    except SystemExit as exc:
        reply["error"] = "SystemExit: " + str(exc.code)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next  # hide this REPL's own frames: the model should see only its code
        tb = traceback.format_exception(type(exc), exc, tb)
        err.write("".join(tb))
        reply["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    if in_child:
        os._exit(0)  # a process the cell forked must never answer the parent's requests
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    reply.update(stdout=out.value(), stderr=err.value(), truncated=out.truncated or err.truncated)
    proto_out.write(json.dumps(reply).encode() + b"\n")
    proto_out.flush()
"""
