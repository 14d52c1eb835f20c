"""A strict reader of Prometheus' text exposition format 0.0.4, for the tests of ``/metrics``.

Stricter than Prometheus itself where a lenient reading would hide a mistake: every family must have one
HELP and one TYPE line before its samples, its samples must be together, a series may appear once, and a
label value may hold only the three escapes the format has (``\\\\``, ``\\"``, ``\\n``). Any fault raises
:class:`FormatError` naming the line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
SUFFIXES = {"summary": ("_sum", "_count"), "histogram": ("_bucket", "_sum", "_count")}


class FormatError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Family:
    name: str
    type: str = ""
    help: str | None = None
    samples: list[Sample] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        """The value of the one sample with exactly these labels (KeyError when there is none)."""
        for s in self.samples:
            if s.labels == labels:
                return s.value
        raise KeyError(f"{self.name}{labels} not among {[s.labels for s in self.samples]}")

    def by(self, label: str) -> dict[str, float]:
        """Label value -> sample value, for a family with one sample per value of ``label``."""
        out: dict[str, float] = {}
        for s in self.samples:
            key = s.labels[label]
            if key in out:
                raise KeyError(f"{self.name}: two samples with {label}={key!r}")
            out[key] = s.value
        return out


def _unescape(text: str, allowed: str, where: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in allowed or not nxt:
                raise FormatError(f"{where}: bad escape \\{nxt} in {text!r}")
            out.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _labels(text: str, where: str) -> tuple[dict[str, str], str]:
    """Parse ``{a="b",...}`` at the start of ``text``; return the labels and the rest."""
    labels: dict[str, str] = {}
    i = 1
    while True:
        if text[i : i + 1] == "}":
            return labels, text[i + 1 :]
        m = LABEL_NAME.match(text, i)
        if not m:
            raise FormatError(f"{where}: bad label name at {text[i:]!r}")
        name = m.group(0)
        if name.startswith("__"):
            raise FormatError(f"{where}: label {name} is reserved")
        if name in labels:
            raise FormatError(f"{where}: label {name} twice")
        i = m.end()
        if text[i : i + 2] != '="':
            raise FormatError(f'{where}: expected =" after {name}')
        i += 2
        j = i
        while j < len(text) and text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        if j >= len(text):
            raise FormatError(f"{where}: unterminated label value")
        labels[name] = _unescape(text[i:j], '\\"n', where)
        i = j + 1
        if text[i : i + 1] == ",":
            i += 1
        elif text[i : i + 1] != "}":
            raise FormatError(f"{where}: expected , or }} after label {name}")


def parse(body: str, described: bool = True) -> dict[str, Family]:
    """The families of a ``/metrics`` body, by name; FormatError at the first fault. ``described=False`` for
    other programs' metrics, where HELP and TYPE lines are optional as the format allows (Orthanc writes
    neither: its samples are untyped)."""
    if not body.endswith("\n"):
        raise FormatError("the body does not end with a line feed")
    families: dict[str, Family] = {}
    current: str | None = None
    done: set[str] = set()  # families whose samples ended (another family's line came)
    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def family_of(sample_name: str) -> str:
        for name, fam in families.items():
            if sample_name == name or sample_name in (name + s for s in SUFFIXES.get(fam.type, ())):
                return name
        if described:
            raise FormatError(f"sample {sample_name} has no TYPE line before it")
        families[sample_name] = Family(sample_name, "untyped")
        return sample_name

    for n, line in enumerate(body.split("\n")[:-1], 1):
        where = f"line {n}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise FormatError(f"{where}: bad metric name {name!r}")
                if name in done or (name != current and name in families and families[name].samples):
                    raise FormatError(f"{where}: {parts[1]} of {name} after its samples")
                fam = families.setdefault(name, Family(name))
                if current is not None and current != name:
                    done.add(current)
                current = name
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise FormatError(f"{where}: second HELP for {name}")
                    fam.help = _unescape(parts[3] if len(parts) > 3 else "", "\\n", where)
                else:
                    if fam.type:
                        raise FormatError(f"{where}: second TYPE for {name}")
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise FormatError(f"{where}: bad TYPE line {line!r}")
                    fam.type = parts[3]
            continue  # any other comment
        m = NAME.match(line)
        if not m:
            raise FormatError(f"{where}: bad sample line {line!r}")
        sample_name, rest = m.group(0), line[m.end() :]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            labels, rest = _labels(rest, where)
        fields = rest.split(" ")
        if len(fields) not in (2, 3) or fields[0] != "":
            raise FormatError(f"{where}: expected one space, a value and an optional timestamp: {line!r}")
        if not FLOAT.fullmatch(fields[1]):
            raise FormatError(f"{where}: bad value {fields[1]!r}")
        if len(fields) == 3 and not re.fullmatch(r"-?\d+", fields[2]):
            raise FormatError(f"{where}: bad timestamp {fields[2]!r}")
        name = family_of(sample_name)
        fam = families[name]
        if not described and current != name and not fam.samples and name not in done:
            if current is not None:
                done.add(current)
            current = name  # an untyped family starts with its first sample
        if name in done or (current is not None and name != current):
            raise FormatError(f"{where}: samples of {name} are not together")
        if described and fam.help is None:
            raise FormatError(f"{where}: {name} has no HELP line")
        key = (sample_name, tuple(sorted(labels.items())))
        if key in series:
            raise FormatError(f"{where}: {sample_name}{labels} appears twice")
        series.add(key)
        value = float(fields[1].replace("Inf", "inf").replace("NaN", "nan"))
        if sample_name == name and fam.type == "counter" and (value < 0 or math.isnan(value)):
            raise FormatError(f"{where}: counter {name} is {value}")
        fam.samples.append(Sample(sample_name, labels, value))
    for fam in families.values():
        if not fam.type:
            raise FormatError(f"{fam.name} has no TYPE line")
    return families
