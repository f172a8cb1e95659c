"""Compile the EAs' MQL with g++ against an MQL runtime shim (issue 9).

Three steps, each mechanical and written down in docs/mql.md:

1. ``transform``: MQL source -> one C++ translation unit. The project's
   ``#include <QuantumTrader/...>`` are inlined once each (include guards),
   ``#include <Zmq/Zmq.mqh>`` becomes the shim's ``mql_zmq.hpp``, ``#property``
   lines go, ``input``/``sinput``/``extern`` variables become plain globals
   registered by name so the runtime can set them, ``T name[]`` becomes
   ``MqlArray<T> name`` (a bounds-checked dynamic array, as MQL's), ``T
   name[N]`` becomes ``MqlFixedArray<T, N>``, and string literals become MQL
   strings (``S("...")``) so ``"a" + b`` means concatenation.
2. ``prelude``: C++ declarations of the MQL built-ins the EA calls, generated
   from ../shared/data/mql/mql-reference.json (documented signatures with
   their defaults), for the EA's platform only: an MQL5-only call in the MT4
   EA, a typo or a wrong argument count is a compile error.
3. ``build``: g++ -std=c++17 -Wall -Wextra -Werror, the EA's unit plus the
   runtime (runtime/terminal.cpp: the simulated terminal that implements the
   declared built-ins), linked with libzmq.

Kept in tests/ (not mql/): it is a test instrument, never installed by a
trader; mql/ holds only what goes into a terminal's data folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mql"))
import mqlsource  # noqa: E402  (shared with the reference check)

INCLUDE_DIR = HERE / "include"
RUNTIME = HERE / "runtime" / "terminal.cpp"
# Warnings silenced, each for a reason (docs/mql.md lists them too):
#  -Wno-unused-parameter: MQL handlers have fixed signatures (OnDeinit(reason)) and
#   the runtime implements documented parameters it does not simulate (arrow colours).
SILENCED = ["-Wno-unused-parameter"]
CXXFLAGS = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *SILENCED]

_TYPES = (
    "bool char uchar short ushort int uint long ulong float double string datetime color void "
    "MqlTick MqlTradeRequest MqlTradeResult MqlDateTime"
).split()


class BuildError(AssertionError):
    """The EA did not compile: the compiler's message, with lines of the generated unit."""


# -- 1. transform ---------------------------------------------------------------


def _inline(path: Path, mql_root: Path, seen: set[str], out: list[str]) -> None:
    for line in path.read_text(encoding="utf-8").split("\n"):
        m = re.match(r'\s*#include\s*[<"]([^>"]+)[>"]', line)
        if m:
            inc = m.group(1)
            if inc == "Zmq/Zmq.mqh":
                out.append('#include "mql_zmq.hpp"')
            elif inc.startswith("QuantumTrader/"):
                if inc not in seen:
                    seen.add(inc)
                    out.append(f"// ---- {inc}")
                    _inline(mql_root / "Include" / inc, mql_root, seen, out)
            else:
                raise BuildError(f"{path.name}: #include <{inc}> is outside the subset (only Zmq/Zmq.mqh and QuantumTrader/*)")
            continue
        if re.match(r"\s*#property\b", line):
            out.append("")
            continue
        out.append(line)


_STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"')


def _wrap_literals(code: str) -> str:
    """Every string literal outside comments and #include lines -> S("...")."""
    out: list[str] = []
    for line in code.split("\n"):
        if line.lstrip().startswith("#"):
            out.append(line)
            continue
        clean = mqlsource.strip_comments(line)
        comment_at = len(clean.rstrip()) if clean.rstrip() != line.rstrip() else len(line)
        head, tail = line[:comment_at], line[comment_at:]
        out.append(_STRING_LITERAL.sub(lambda m: f"S({m.group(0)})", head) + tail)
    return "\n".join(out)


@dataclass(frozen=True)
class Unit:
    cpp: str
    inputs: list[tuple[str, str]]  # (type, name)


def transform(expert: Path, platform: str, mql_root: Path) -> Unit:
    """The EA as one C++ unit (see the module docstring for each rule)."""
    lines: list[str] = []
    _inline(expert, mql_root, set(), lines)
    code = mqlsource.strip_comments("\n".join(lines))
    inputs: list[tuple[str, str]] = []

    def input_decl(m: re.Match[str]) -> str:
        inputs.append((m.group(2), m.group(3)))
        return f"{m.group(2)} {m.group(3)}"

    code = re.sub(r"^\s*(input|sinput|extern)\s+(\w+)\s+(\w+)", input_decl, code, flags=re.M)
    code = re.sub(r"\b(const\s+)?(\w+)\s*&\s*(\w+)\s*\[\s*\]", lambda m: f"{m.group(1) or ''}MqlArray<{m.group(2)}> &{m.group(3)}", code)
    code = re.sub(r"\b(\w+)\s+(\w+)\s*\[\s*\]\s*;", r"MqlArray<\1> \2;", code)
    code = re.sub(r"\b(\w+)\s+(\w+)\s*\[\s*(\d+)\s*\]\s*;", r"MqlFixedArray<\1, \3> \2;", code)
    if re.search(r"\w\s*\[\s*\]", code):
        raise BuildError("an array declaration the transform does not handle (see docs/mql.md, the MQL subset)")
    code = _wrap_literals(code)
    define = "QT_MQL4" if platform == "mql4" else "QT_MQL5"
    setters = "\n".join(f'  if (mql_input_set("{n}", {n})) {{}}' for _, n in inputs)
    cpp = (
        f"// generated by tests/mql_harness/harness.py from {expert.name}: do not edit\n"
        f"#define {define} 1\n#include \"mql_types.hpp\"\n#include \"prelude.hpp\"\n#include \"mql_templates.hpp\"\n{code}\n"
        f"void mql_apply_inputs() {{\n{setters}\n}}\n"
    )
    return Unit(cpp, inputs)


# -- 2. prelude -----------------------------------------------------------------


_DECL = re.compile(
    r"(const\s+)?([A-Za-z_]\w*)\s*(&?)\s*([A-Za-z_]\w*)\s*(\[\s*\d*\s*\])?\s*(?:=\s*('[^']*'|[-\w.\"]+))?(?=\s*(?:,|\)|//|$))"
)


def _params(syntax: str) -> list[str]:
    """C++ parameter declarations read from a documented signature.

    The reference's syntax strings lost their line breaks, so each parameter's
    comment runs into the next declaration ("string name , // symbol int type");
    a declaration is a known type, a name, and then a comma, ")" or "//".
    """
    body = syntax[syntax.find("(") + 1 : syntax.rfind(")")]
    out = []
    for m in _DECL.finditer(body):
        const, base, amp, name, dims, default = m.groups()
        if base not in _TYPES and not base.startswith("ENUM_"):
            continue
        ref = "&" if amp or dims else ""
        if dims is not None:
            ctype = "MqlArray<T>" if base == "void" else f"MqlArray<{base}>"
        else:
            ctype = "T" if base == "void" else base
        out.append(f"{'const ' if const else ''}{ctype}{ref} {name}" + (f" = {default}" if default else ""))
    return out


def declarations_for(names: set[str], platform: str) -> list[str]:
    """C++ declarations of the built-ins ``names`` for ``platform``, from the reference."""
    raw = mqlsource.raw_reference()
    out: list[str] = []
    for name in sorted(names):
        done: set[str] = set()
        for entry in raw.get((name, platform), []):
            syntax = entry["syntax"]
            m = re.match(r"\s*([A-Za-z_]\w*)\s+" + re.escape(name) + r"\s*\(", syntax)
            if m is None:
                continue
            decls = _params(syntax)
            variadic = "..." in syntax
            if variadic:
                decls.append("const A&... args")
            template = []
            if any("MqlArray<T>" in d or re.match(r"(const )?T&", d) for d in decls):
                template.append("class T")
            if variadic:
                template.append("class... A")
            prefix = f"template <{', '.join(template)}> " if template else ""
            decl = f"{prefix}{m.group(1)} {name}({', '.join(decls)});"
            if decl not in done:
                done.add(decl)
                out.append(decl)
        if not done:
            out.append(f"// {name}: no documented {platform.upper()} signature; calling it is a compile error")
    return out


def prelude(names: set[str], platform: str) -> str:
    lines = declarations_for(names, platform)
    return (
        f"// generated from ../shared/data/mql/mql-reference.json for {platform.upper()}: do not edit\n"
        "#pragma once\n#include \"mql_types.hpp\"\n" + "\n".join(lines) + "\n"
    )


# -- 3. build -------------------------------------------------------------------


def build(platform: str, out_dir: Path, mql_root: Path | None = None) -> Path:
    """Compile the EA of ``platform`` into ``out_dir``; the executable's path, or BuildError."""
    mql_root = mql_root or mqlsource.MQL_DIR
    expert = mql_root / "Experts" / mqlsource.EXPERTS[platform].name
    if shutil.which("g++") is None:
        raise BuildError("g++ not found (Debian: apt-get install g++)")
    if not Path("/usr/include/zmq.h").is_file():
        raise BuildError("libzmq's header not found: apt-get install libzmq3-dev (.ci/run does)")
    src = mqlsource.load(platform, mql_root)
    names = {c.name for c in mqlsource.builtin_calls(src)}
    unit = transform(expert, platform, mql_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prelude.hpp").write_text(prelude(names, platform), encoding="utf-8")
    (out_dir / "ea.cpp").write_text(unit.cpp, encoding="utf-8")
    exe = out_dir / f"ea_{platform}"
    define = "-DQT_MQL4=1" if platform == "mql4" else "-DQT_MQL5=1"
    cmd = ["g++", *CXXFLAGS, define, f"-I{out_dir}", f"-I{INCLUDE_DIR}", str(out_dir / "ea.cpp"), str(RUNTIME), "-o", str(exe), "-lzmq"]
    key = hashlib.sha256((" ".join(cmd) + unit.cpp + (out_dir / "prelude.hpp").read_text() + _sources_digest()).encode()).hexdigest()
    stamp = out_dir / "build.sha256"
    if exe.is_file() and stamp.is_file() and stamp.read_text() == key:
        return exe
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise BuildError(f"g++ failed for {expert.name}:\n{proc.stderr[-6000:]}")
    stamp.write_text(key)
    return exe


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted([*INCLUDE_DIR.rglob("*.hpp"), RUNTIME]):
        h.update(path.read_bytes())
    return h.hexdigest()


if __name__ == "__main__":  # python tests/mql_harness/harness.py mql5 /tmp/out
    print(build(sys.argv[1], Path(sys.argv[2])))
