"""Read the EAs' MQL source the way a checker needs it: comments and literals out, calls with their argument counts.

Used by the reference check (test_reference.py) and by the g++ harness, so
both agree on what "the functions the EA calls" are. It is a lexer plus a
parenthesis matcher, not an MQL parser: it relies on the EAs keeping to the
conservative subset written down in docs/mql.md (no macros that expand to
calls, no function pointers, no operator overloading).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MQL_DIR = REPO / "mql"
EXPERTS = {"mql4": MQL_DIR / "Experts" / "QuantumTraderBridge.mq4", "mql5": MQL_DIR / "Experts" / "QuantumTraderBridge.mq5"}
REFERENCE = REPO.parent / "shared" / "data" / "mql" / "mql-reference.json"

_TOKEN = re.compile(r"\s*(?:(?P<id>[A-Za-z_]\w*)|(?P<num>\d[\w.]*)|(?P<str>\"(?:\\.|[^\"\\])*\")|(?P<chr>'(?:\\.|[^'\\])*')|(?P<op>::|->|[^\sA-Za-z_0-9]))")
_INCLUDE = re.compile(r'^\s*#include\s*[<"]([^>"]+)[>"]', re.M)
# Words that take parentheses without being calls.
_NOT_CALLS = frozenset({"if", "while", "for", "switch", "return", "sizeof", "else", "case", "do", "new", "delete"})


def strip_comments(text: str) -> str:
    """Comments out (replaced by spaces, so offsets keep their lines), literals kept."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Token:
    kind: str  # id, num, str, chr, op
    text: str
    line: int


def tokens(text: str) -> list[Token]:
    """Tokens of comment-free source, preprocessor lines dropped."""
    body = "\n".join("" if line.lstrip().startswith("#") else line for line in text.split("\n"))
    out: list[Token] = []
    pos, line = 0, 1
    while True:
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            break
        line += body.count("\n", pos, m.start(m.lastgroup))
        out.append(Token(m.lastgroup, m.group(m.lastgroup), line))
        line += m.group(m.lastgroup).count("\n")
        pos = m.end()
    return out


@dataclass(frozen=True)
class Call:
    name: str
    args: int
    file: str
    line: int
    receiver: str | None = None  # "g_push" for g_push.setLinger(0)


@dataclass
class Source:
    """One EA with the project's includes it pulls in (mql-zmq's own headers are not ours)."""

    files: dict[str, str] = field(default_factory=dict)  # relative path -> comment-free text
    calls: list[Call] = field(default_factory=list)
    defined: set[str] = field(default_factory=set)  # functions, types and macros we define
    external_includes: set[str] = field(default_factory=set)


def _arg_count(toks: list[Token], open_index: int) -> tuple[int, int]:
    """(number of arguments, index of the matching ')') for the '(' at open_index."""
    depth, commas, empty = 0, 0, True
    for k in range(open_index, len(toks)):
        t = toks[k].text
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if depth == 0:
                return (0 if empty else commas + 1), k
        elif t == "," and depth == 1:
            commas += 1
        if k > open_index and depth >= 1 and not (t == ")" and depth == 0):
            empty = False
    raise ValueError(f"unbalanced parentheses from line {toks[open_index].line}")


def scan(text: str, rel: str, src: Source) -> None:
    """Add one file's calls and definitions to src."""
    clean = strip_comments(text)
    src.files[rel] = clean
    src.defined.update(re.findall(r"^\s*#define\s+(\w+)", clean, re.M))
    toks = tokens(clean)
    for k, tok in enumerate(toks):
        if tok.kind != "id" or k + 1 >= len(toks) or toks[k + 1].text != "(":
            if tok.kind == "id" and k > 0 and toks[k - 1].text in ("struct", "class", "enum"):
                src.defined.add(tok.text)
            continue
        if tok.text in _NOT_CALLS:
            continue
        prev = toks[k - 1] if k else None
        args, close = _arg_count(toks, k + 1)
        if prev is not None and prev.text in (".", "->"):
            receiver = toks[k - 2].text if k >= 2 else None
            src.calls.append(Call(tok.text, args, rel, tok.line, receiver))
        elif prev is not None and prev.text == "::":
            continue  # Class::method definitions (mql-zmq style); ours have none
        elif prev is not None and (prev.kind == "id" and prev.text not in _NOT_CALLS or prev.text == "~"):
            # `type name(` : a function definition or prototype, or an object
            # constructed with arguments (`Socket g_push(ctx, ZMQ_PUSH)`)
            after = toks[close + 1].text if close + 1 < len(toks) else ""
            if after in ("{", ";", "const"):
                src.defined.add(tok.text)
        else:
            src.calls.append(Call(tok.text, args, rel, tok.line))


def load(platform: str, mql_root: Path = MQL_DIR) -> Source:
    """The EA of ``platform`` ("mql4" or "mql5") with its QuantumTrader includes, recursively."""
    src = Source()
    seen: set[Path] = set()

    def visit(path: Path, rel: str) -> None:
        if path in seen:
            return
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        for inc in _INCLUDE.findall(text):
            target = mql_root / "Include" / inc
            if inc.startswith("QuantumTrader/"):
                visit(target, f"Include/{inc}")
            else:
                src.external_includes.add(inc)
        scan(text, rel, src)

    expert = mql_root / "Experts" / EXPERTS[platform].name
    visit(expert, f"Experts/{expert.name}")
    return src


# -- the MQL reference (../shared/data/mql) -------------------------------------


@dataclass(frozen=True)
class Signature:
    name: str
    version: str
    min_args: int
    max_args: float  # inf for "..."
    syntax: str


def _signature(entry: dict) -> Signature:
    syntax = entry["syntax"]
    params = [p for p in entry["parameters"] if p]
    variadic = "..." in syntax or "..." in params
    names = [p for p in params if p != "..."]
    required = 0
    for p in names:
        bare = re.sub(r"[\[\]&*]|=.*$", "", p).strip()
        optional = "=" in p or re.search(rf"\b{re.escape(bare)}\s*=", syntax) is not None
        in_syntax = re.search(rf"\b{re.escape(bare)}\b", syntax) is not None
        if not optional and in_syntax:
            required += 1
    return Signature(entry["name"], entry["version"], required, float("inf") if variadic else len(names), syntax)


def raw_reference(path: Path = REFERENCE) -> dict[tuple[str, str], list[dict]]:
    """(name, version) -> the reference entries of built-in functions (class members left out)."""
    if not path.is_file():
        raise AssertionError(f"MQL reference not found: looked for {path} (../shared/data beside the repo)")
    out: dict[tuple[str, str], list[dict]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")):
        if entry["category"] == "class" or "::" in entry["syntax"] or entry["version"] not in ("mql4", "mql5"):
            continue
        if not entry["syntax"] and not entry["parameters"]:
            continue  # a page without a signature (an overview), not a function
        out.setdefault((entry["name"], entry["version"]), []).append(entry)
    return out


def reference(path: Path = REFERENCE) -> dict[tuple[str, str], list[Signature]]:
    """(name, version) -> documented signatures of the built-in functions."""
    return {key: [_signature(e) for e in entries] for key, entries in raw_reference(path).items()}


def builtin_calls(src: Source) -> list[Call]:
    """The calls of src that are not to a function, type or macro the project defines, nor methods."""
    return [c for c in src.calls if c.receiver is None and c.name not in src.defined]
