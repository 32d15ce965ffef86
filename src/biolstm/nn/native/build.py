"""Where the C kernels come from: built when the package is installed, else compiled at first use.

The kernels (``biolstm/nn/kernels/*.c``) are plain C loaded with ctypes, not Python extension
modules. ``pip install`` builds each of them through setuptools (``setup.py`` reads
:func:`variants` and :data:`COMMON_FLAGS` from this file) into ``biolstm/nn/kernels/`` as
``_<kernel>_<variant><EXT_SUFFIX>``; on x86-64 once per instruction-set level (x86-64-v4 with
AVX-512, v3 with AVX2 and FMA, and the baseline), so that a wheel runs on any x86-64 CPU and
:func:`load` picks the best build this CPU can run. Where no installed build loads (a source
checkout that was never installed, a build that failed), the kernel is compiled at first use
with the system C compiler (``$CC``, else ``cc``) for this CPU (``-march=native``) into a user
cache folder (``$BIOLSTM_CACHE``, else ``$XDG_CACHE_HOME/biolstm`` or ``~/.cache/biolstm``),
under a name made from a hash of the source, the flags and the CPU. Each is built with OpenMP
where the compiler has it: loaded into a process where torch has loaded its libgomp.so.1, the
loader reuses that library, so the kernel runs on torch's own thread pool.

Where neither works, or ``BIOLSTM_NATIVE=0`` is set, :func:`load` returns None, keeps the reason
(:func:`unavailable_reason`) and says it once per process and kernel, as a BiolstmWarning that
names the kernel, the reason and what runs instead. This module imports nothing outside the
standard library: setup.py runs it without torch.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"
# -ffp-contract=fast: ISO C mode would otherwise keep every a * b + c as two roundings, no FMA
COMMON_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-std=c99", "-fPIC"]
OPENMP = ["-fopenmp"]  # tried first; without it a kernel still builds and runs on one thread per call
NATIVE = ["-march=native"]
# x86-64 instruction-set levels, best first: (tag, -march value, the /proc/cpuinfo flags it needs)
X86_LEVELS = (
    ("v4", "x86-64-v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
    ("v3", "x86-64-v3", ("avx2", "fma", "bmi2", "f16c", "movbe")),
    ("v1", "x86-64", ()),
)
# what each kernel is for, in the fallback warning and in `biolstm --version`
PURPOSE = {
    "minrnn": ("MinLSTM/MinGRU C kernel", "MinLSTM and MinGRU use their PyTorch scan instead (same values, slower)"),
    "scan": ("LSTM/GRU/RNN step kernel", "the transparent engine runs its step loop in PyTorch (same values, slower)"),
}

_lock = threading.Lock()
_state: dict[str, tuple[ctypes.CDLL | None, str | None]] = {}  # kernel -> (library or None, why not)


def x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def variants() -> list[tuple[str, list[str]]]:
    """The builds made at install time, best first: (tag, target flags)."""
    if x86():
        return [(tag, [f"-march={arch}"]) for tag, arch, _ in X86_LEVELS]
    return [("generic", [])]


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            line = next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def _runnable_tags() -> list[str]:
    """The install-time builds this CPU can run, best first."""
    if not x86():
        return ["generic"]
    flags = _cpu_flags()
    if not flags:  # no /proc/cpuinfo: only the baseline is safe
        return ["v1"]
    return [tag for tag, _, need in X86_LEVELS if all(f in flags for f in need)]


def installed(name: str) -> list[Path]:
    """The install-time builds of kernel ``name`` this CPU can run, best first."""
    found = []
    for tag in _runnable_tags():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = KERNEL_DIR / f"_{name}_{tag}{suffix}"
            if path.exists():
                found.append(path)
                break
    return found


def headers() -> list[Path]:
    """The headers the kernels include (from their own folder)."""
    return sorted(KERNEL_DIR.glob("*.h"))


def source_hash(name: str) -> str:
    """A hash of kernel ``name``'s source and the headers it includes, compiled into each build
    (``<name>_source()``): an installed build made from another source is not loaded."""
    text = (KERNEL_DIR / f"{name}.c").read_bytes() + b"".join(h.read_bytes() for h in headers())
    return hashlib.sha256(text).hexdigest()[:16]


def source_define(name: str) -> str:
    return f'-DBIOLSTM_SOURCE="{source_hash(name)}"'


def cache_dir() -> Path:
    root = os.environ.get("BIOLSTM_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "biolstm"


def _compile(name: str, cc: str, flags: list[str]) -> Path:
    """Kernel ``name`` built with ``flags``, from the cache or compiled into it."""
    source_path = KERNEL_DIR / f"{name}.c"
    source = source_path.read_bytes() + b"".join(h.read_bytes() for h in headers())
    signature = platform.machine() + " ".join(sorted(_cpu_flags()))
    key = hashlib.sha256(source + " ".join([cc, *flags, signature]).encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        res = subprocess.run([cc, *flags, source_define(name), "-shared", "-o", tmp, str(source_path)],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        if res.returncode != 0:
            raise OSError(f"{cc} failed: {res.stderr.strip()[-500:]}")
        os.replace(tmp, target)  # atomic: another process sees no library or the whole of it
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _first_use(name: str) -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("not installed with the package, and no C compiler to build it (set CC or install gcc)")
    base = [*COMMON_FLAGS, *NATIVE]
    for flags in (base + OPENMP, base):  # without OpenMP where it does not build or load
        try:
            lib = ctypes.CDLL(str(_compile(name, cc, flags)))
            lib.origin = f"compiled at first use for this CPU, in {cache_dir()}"
            return lib
        except (OSError, subprocess.SubprocessError) as err:
            if flags == base:
                raise OSError(str(err)) from err
    raise AssertionError("unreachable")


def _open(name: str) -> ctypes.CDLL:
    for path in installed(name):
        try:
            lib = ctypes.CDLL(str(path))
            built_from = getattr(lib, f"{name}_source")
        except (OSError, AttributeError):
            continue  # e.g. built with an OpenMP runtime this process cannot load: try the next
        built_from.restype = ctypes.c_char_p
        if built_from().decode() != source_hash(name):
            continue  # built from an older source (the package changed and was not reinstalled)
        lib.origin = f"built at install ({path.name})"
        return lib
    return _first_use(name)


def load(name: str, setup=None) -> ctypes.CDLL | None:
    """Kernel ``name`` loaded (``setup(lib)`` run on it once: argument types, and any check that
    raises OSError to refuse it), or None where it cannot be had: the reason is kept and said
    once per process in a BiolstmWarning."""
    with _lock:
        if name not in _state:
            lib, why = None, None
            if os.environ.get("BIOLSTM_NATIVE", "1") == "0":
                why = "disabled by BIOLSTM_NATIVE=0"
            else:
                try:
                    lib = _open(name)
                    lib.openmp = bool(getattr(lib, f"{name}_openmp")())
                    if setup is not None:
                        setup(lib)
                except (OSError, subprocess.SubprocessError, AttributeError) as err:
                    lib, why = None, str(err)
                    import warnings

                    from ...validation import BiolstmWarning

                    what, instead = PURPOSE[name]
                    warnings.warn(f"the {what} is not available ({err}); {instead}", BiolstmWarning, stacklevel=3)
            _state[name] = (lib, why)
        return _state[name][0]


def unavailable_reason(name: str) -> str | None:
    """Why :func:`load` gave None for kernel ``name`` (after it was called), else None."""
    return _state.get(name, (None, None))[1]


def describe(name: str, setup=None) -> str:
    """One line on kernel ``name``: where it comes from and whether it runs on OpenMP threads,
    or why it is not available. Loads it if it was not yet."""
    lib = load(name, setup)
    if lib is None:
        return f"not available ({unavailable_reason(name)}); {PURPOSE[name][1].split(' (')[0]}"
    return f"active, {lib.origin}, {'OpenMP threads' if lib.openmp else 'one thread per call'}"
