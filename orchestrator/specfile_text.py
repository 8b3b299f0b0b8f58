"""A spec file's text read: TOML or YAML to data, and where each key is (its line), for one-line errors that
name the file, the line and the key (``orchestrator.specfile`` checks the data)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from .spec import SpecError


class SpecFileError(SpecError):
    """A spec file's mistake; the message starts with ``file:line:`` (or ``file:`` where no line applies)."""


def toml_lines(text: str) -> dict[tuple, int]:
    """Key path -> 1-based line, from the text (tomllib keeps no positions): table headers, ``key =`` lines
    under them, and the keys of an inline table on its key's line."""
    lines: dict[tuple, int] = {}
    table: tuple = ()
    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        header = re.match(r"\[\[?\s*([^\[\]=]+?)\s*\]\]?\s*(#.*)?$", s)
        if header:
            table = dotted(header.group(1))
            lines.setdefault(table, i)
            continue
        key = re.match(r"([A-Za-z0-9_\-\"'. ]+?)\s*=", s)
        if key:
            path = table + dotted(key.group(1))
            lines.setdefault(path, i)
            rest = s[key.end():].lstrip()
            if rest.startswith("{"):
                for k in re.findall(r"([A-Za-z0-9_\-]+)\s*=", rest):
                    lines.setdefault(path + (k,), i)
    return lines


def dotted(key: str) -> tuple:
    return tuple(k.strip().strip("\"'") for k in key.split("."))


def yaml_lines(node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Key path (list items by index) -> 1-based line, from the composed node tree's marks."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = path + (str(k.value),)
            out.setdefault(p, k.start_mark.line + 1)
            yaml_lines(v, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out.setdefault(path + (i,), v.start_mark.line + 1)
            yaml_lines(v, path + (i,), out)
    return out


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e-3 as a float (YAML 1.2; PyYAML's 1.1 rules want 1.0e-3) and refuses aliases
    (``*name``): a few hundred bytes of nested aliases expand to gigabytes (an alias bomb)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a spec file",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
               r"|[0-9][0-9_]*[eE][-+]?[0-9]+|\.(?:inf|Inf|INF)|[-+]\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


@dataclass(frozen=True)
class Doc:
    """A parsed file: its name as the user gave it and where each key is, for error messages."""

    path: str
    lines: dict

    def line(self, keys: tuple) -> int | None:
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.lines:
                return self.lines[keys[:n]]
        return None

    def error(self, keys: tuple, message: str) -> SpecFileError:
        line = self.line(keys)
        name = ".".join(str(k) for k in keys if not isinstance(k, int))
        return SpecFileError(f"{self.path}{f':{line}' if line else ''}: {name + ': ' if name else ''}{message}")


def parse_text(path: str, text: str, fmt: str) -> tuple[dict, Doc]:
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
            where = f":{m.group(1)}" if m else ""
            raise SpecFileError(f"{path}{where}: TOML syntax error: {str(e).split(' (at ')[0]}") from None
        return data, Doc(path, toml_lines(text))
    try:
        data = yaml.load(text, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass
        node = yaml.compose(text, Loader=YamlLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecFileError(f"{path}{where}: YAML syntax error: {problem}") from None
    return ({} if data is None else data), Doc(path, yaml_lines(node) if node is not None else {})
